"""bin/bench.py --latency: one row per cell, SavedModel and TensorFlow Lite."""

import numpy as np
import pytest

from nasp_tf import config as config_lib
from nasp_tf import counting
from nasp_tf import genotype as genotype_lib
from nasp_tf.bench import latency
from nasp_tf.cnn import model as model_lib


@pytest.mark.slow
def test_latency_rows_time_what_the_cell_and_preset_build(tmp_path, capsys):
    # A searched cell arrives as a genotype JSON file, a published one by name.
    searched = genotype_lib.PUBLISHED["DARTS_V1"]
    path = tmp_path / "genotype.json"
    genotype_lib.write_json(searched, str(path))
    config = config_lib.BenchConfig(preset="tiny", latency=("NASP", str(path)), steps=1,
                                    warmup=1)
    report = latency.run_latency(config)
    rows = report["results"]
    assert [r["cell"] for r in rows] == ["NASP", str(path)]
    channels, layers = latency.PRESETS["tiny"]
    for row, genotype in zip(rows, (genotype_lib.PUBLISHED["NASP"], searched)):
        network = model_lib.network_cifar(genotype, num_classes=10, channels=channels,
                                          layers=layers, auxiliary=False,
                                          image_shape=(32, 32, 3))
        assert row["parameters"] == counting.parameter_count(network)
        for key in ("saved_model", "tflite", "tflite_int8"):
            assert row[f"{key}_ms"] > 0 and row[f"{key}_bytes"] > 0
        # The float32 TensorFlow Lite file computes what the SavedModel does.
        assert row["tflite_max_abs_difference"] < 1e-5
        # (tiny: no weight has the 1,024 elements the converter quantises)
        assert row["tflite_int8_bytes"] <= row["tflite_bytes"]
    table = capsys.readouterr().out
    assert "| cell | parameters | SavedModel ms |" in table
    assert f"| NASP | {rows[0]['parameters']:,} |" in table
    assert np.isfinite([r["saved_model_ms"] for r in rows]).all()
