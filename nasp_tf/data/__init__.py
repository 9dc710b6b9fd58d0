"""The data of searches and retrainings: images (`images`, `user_images`) and
text (`text`). The names here load no TensorFlow (the flag modules use them).
"""

# The digits protocol of the cell-quality benchmark (docs/quality.md): a fixed
# permutation of scikit-learn's 1,797 digits; its first DIGITS_SEARCH_POOL
# images are all a search sees, the other 1,000 form DIGITS_FOLDS folds, each
# tested by networks trained on the search pool and the other folds. No image
# a result is reported on is seen by the search that chose the cell.
DIGITS_SEARCH_POOL = 797
DIGITS_FOLDS = 2
DIGITS_PROTOCOL = ("digits_search",) + tuple(f"digits_fold{k}" for k in range(DIGITS_FOLDS))
