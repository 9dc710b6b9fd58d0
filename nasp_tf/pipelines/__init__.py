"""The jobs the binaries run, one recipe each, on one shared run skeleton.

`common` is the skeleton (run directory, flags record, strategy, seeds,
checkpoints and resume, fit with the standard callbacks, the outputs). The
recipes `image_search`, `text_search`, `image_train` and `text_train` never
import each other, and the retraining recipes import nothing from
`nasp_tf.search`.
"""
