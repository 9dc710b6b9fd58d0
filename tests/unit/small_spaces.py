"""Small CNN search spaces for the step tests of tests/unit (imported by name:
pytest puts this directory on sys.path). Each keeps every kind of op a step
treats differently at a fraction of darts7's graph; the steps' equality with
the reference is test_search_model's and test_fidelity's, on darts7 and nasp12."""

from nasp_tf import spaces

# A pool, the identity and a convolution with batch norm.
OPS3 = ("max_pool_3x3", "skip_connect", "sep_conv_3x3")
SMALL3 = spaces.CNNSpace("small3", OPS3, OPS3)
# ... and a second convolution, priced differently by the complexity penalty.
OPS4 = OPS3 + ("dil_conv_3x3",)
SMALL4 = spaces.CNNSpace("small4", OPS4, OPS4)
