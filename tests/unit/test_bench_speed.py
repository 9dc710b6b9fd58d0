from nasp_tf import benchmark


def test_table_ratios_are_relative_to_nasp_of_the_same_space():
    rows = [dict(searcher=s, space=sp, arch_s=a, weight_s=w, total_s=a + w, first_step_s=1.0,
                 peak_rss_gb=m)
            for s, sp, a, w, m in [("nasp", "darts7", 0.3, 0.1, 1.0),
                                   ("darts2", "darts7", 3.0, 1.0, 2.0),
                                   ("nasp", "nasp12", 1.0, 1.0, 1.0),
                                   ("nasp_xla", "nasp12", 0.5, 0.5, 4.0)]]
    table = benchmark.step_table(rows).splitlines()
    assert table[3].startswith("| DARTS-2nd | darts7 |") and "| 10.00x | 2.00x |" in table[3]
    assert table[5].startswith("| NASP (XLA) | nasp12 |") and "| 0.50x | 4.00x |" in table[5]
