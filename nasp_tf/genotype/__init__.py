"""Genotypes: the discrete cells a search returns and retraining builds.

`cnn` (image cells), `rnn` (recurrent cells), `files` (JSON reading and
writing) and `draw` (pictures). The names below are the package's API.
"""

from nasp_tf.errors import GenotypeError
from nasp_tf.genotype.cnn import (PUBLISHED, CNNGenotype, arch_matrices_of,
                                  cnn_genotype_from_json, derive_cnn_genotype,
                                  load_cnn_genotype)
from nasp_tf.genotype.draw import (arch_heatmap, cell_layout, cell_to_dot, cnn_edge_labels,
                                   draw_cell_png, draw_rnn_cell_png, figure_pixels,
                                   rnn_cell_layout, rnn_cell_to_dot, rnn_edge_labels,
                                   write_cell_pictures, write_rnn_cell_pictures)
from nasp_tf.genotype.files import read_json, write_json
from nasp_tf.genotype.rnn import (RNN_PUBLISHED, RNNGenotype, derive_rnn_genotype,
                                  load_rnn_genotype, rnn_genotype_from_json)

__all__ = ["GenotypeError", "PUBLISHED", "CNNGenotype", "arch_matrices_of", "cnn_genotype_from_json",
           "derive_cnn_genotype", "load_cnn_genotype", "arch_heatmap", "cell_layout",
           "cell_to_dot", "cnn_edge_labels", "draw_cell_png", "draw_rnn_cell_png",
           "figure_pixels", "rnn_cell_layout", "rnn_cell_to_dot", "rnn_edge_labels",
           "write_cell_pictures", "write_rnn_cell_pictures", "read_json", "write_json", "RNN_PUBLISHED",
           "RNNGenotype", "derive_rnn_genotype", "load_rnn_genotype",
           "rnn_genotype_from_json"]
