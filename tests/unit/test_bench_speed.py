from nasp_tf.bench import speed


def test_table_ratios_are_relative_to_nasp_of_the_same_space():
    rows = [dict(searcher=s, space=sp, arch_s=a, weight_s=w, total_s=a + w, first_step_s=1.0,
                 peak_rss_gb=m)
            for s, sp, a, w, m in [("nasp", "darts7", 0.3, 0.1, 1.0),
                                   ("darts2", "darts7", 3.0, 1.0, 2.0),
                                   ("nasp", "nasp12", 1.0, 1.0, 1.0),
                                   ("nasp_xla", "nasp12", 0.5, 0.5, 4.0)]]
    table = speed.step_table(rows).splitlines()
    assert table[3].startswith("| DARTS-2nd | darts7 |") and "| 10.00x | 2.00x |" in table[3]
    assert table[5].startswith("| NASP (XLA) | nasp12 |") and "| 0.50x | 4.00x |" in table[5]


def test_rounds_give_the_median_ratio_and_its_range_pinned_rows_apart():
    rows = []
    for round_, (nasp_s, darts_s) in enumerate([(1.0, 2.0), (0.5, 2.0), (1.0, 3.0)]):
        for searcher, total, pin in [("nasp", nasp_s, None), ("nasp", 2 * nasp_s, "worst"),
                                     ("darts2", darts_s, None)]:
            rows.append(dict(searcher=searcher, space="darts7", arch_s=total / 2,
                             weight_s=total / 2, total_s=total, first_step_s=1.0,
                             peak_rss_gb=1.0, round=round_, pin=pin))
    table = speed.step_table(rows).splitlines()
    assert len(table) == 5
    # Ratios per round: 2, 4, 3 -> median 3, range 2-4; the pinned row 2x every round.
    assert table[4].startswith("| DARTS-2nd | darts7 |") and "| 3.00x (2.00-4.00) |" in table[4]
    assert table[3].startswith("| NASP pinned to worst | darts7 |")
    assert "| 2.00x (2.00-2.00) |" in table[3]
    assert "| 1.000 |" in table[2]  # NASP's median total over the rounds: 1.0, 0.5, 1.0


def test_a_pinned_cell_is_what_prox_c1_selects():
    import numpy as np

    from nasp_tf import genotype as genotype_lib
    from nasp_tf import proximal, spaces

    space = spaces.get_cnn_space("darts7")
    genotype = genotype_lib.PUBLISHED["DARTS_V2"]
    matrices = genotype_lib.arch_matrices_of(genotype, space, 4)
    for kind, pairs in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        _, index = proximal.prox_c1(matrices[kind], spaces.edges_per_node(4), 2)
        index = np.asarray(index)
        offsets = [0, 2, 5, 9]
        for entry, (op, source) in enumerate(pairs):
            assert space.ops(kind)[index[offsets[entry // 2] + source]] == op
        assert (index < len(space.ops(kind))).sum() == 8  # two kept edges per node


def test_a_round_with_a_non_finite_loss_is_marked_as_no_timing():
    rows = [dict(searcher=s, space="darts7", arch_s=1.0, weight_s=1.0, total_s=2.0,
                 first_step_s=1.0, peak_rss_gb=1.0, round=r, diverged_steps=d)
            for s, r, d in [("nasp", 0, []), ("darts1", 0, []), ("nasp", 1, []),
                            ("darts1", 1, [3, 4])]]
    table = speed.step_table(rows).splitlines()
    assert table[2].startswith("| NASP | darts7 |")
    assert table[3].startswith("| DARTS-1st (diverged in 1 of 2 rounds: not a timing) |")
