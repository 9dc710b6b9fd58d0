"""The NASP paper's two proximal-algorithm ablations (Yao et al., AAAI 2020, §3.2)."""

from nasp_tf import proximal
from nasp_tf.search import nasp


def prox_c(searcher, arch_matrix):
    """prox_C = prox_C1 ∘ prox_C2 (the paper's Prop. 1), with the searcher's settings."""
    return searcher.project(proximal.prox_c2(arch_matrix))


class PASearcher(nasp.NASPSearcher):
    """PA-standard, the paper's eq. (10): A <- prox_C(A - eps * grad F(A)).

    A itself stays discrete: the gradient is taken at A, the optimizer steps,
    and the result is projected back onto C (the variable's constraint). The
    paper shows it barely moves: a step rarely overturns a row's argmax.
    Same arguments as `NASPSearcher`.
    Reference: Yao, Xu, Tu, Zhu, "Efficient Neural Architecture Search via
      Proximal Iterations", AAAI 2020, eq. (10).
    """

    def arch_constraint(self, arch_matrix):
        return prox_c(self, arch_matrix)[0]


class LazyPASearcher(nasp.NASPSearcher):
    """PA-lazy, the paper's eq. (11): Ā = prox_C(A), A <- A - eps * grad F(Ā).

    NASP without the box: A is never clipped, and Ā projects it onto C2 and
    then C1 each time. Same arguments as `NASPSearcher`.
    Reference: Yao, Xu, Tu, Zhu, "Efficient Neural Architecture Search via
      Proximal Iterations", AAAI 2020, eq. (11).
    """

    arch_constraint = None

    def discrete_arch(self):
        return {kind: prox_c(self, var) for kind, var in self.arch_vars.items()}
