import pytest

from pairforge.config import ConfigError, load_config, parse_config


def test_quickstart_config_is_valid():
    cfg = load_config("configs/quickstart.yaml")
    assert cfg.source.kind == "bundled"
    assert [f.kind for f in cfg.filters] == ["sanity", "iqa"]


def test_builtin_config_name_resolves():
    assert load_config("quickstart").run.name == "quickstart"


@pytest.mark.parametrize(
    "data, must_mention",
    [
        ({"run": {"seeed": 1}}, ["run.seeed", "unknown key"]),
        ({"output": {"samples_per_shard": 0}}, ["output.samples_per_shard", "greater than or equal to 1"]),
        ({"run": {"seed": "abc"}}, ["run.seed"]),
        ({"run": {"device": "tpu"}}, ["run.device", "'auto'", "'cuda'"]),
        ({"source": {"kind": "nope"}}, ["source", "'bundled'", "'files'"]),
        ({"source": {"kind": "bundled", "photos": ["mona_lisa"]}}, ["source.bundled.photos", "mona_lisa", "astronaut"]),
        ({"filters": [{"kind": "iqa", "metrics": []}]}, ["filters.0.iqa", "metrics"]),
        ({"degrade": {"kind": "simple", "blur_sigma": [3, 1]}}, ["degrade.simple.blur_sigma", "lo > hi"]),
        ({"source": {"kind": "files"}}, ["source.files.paths", "Field required"]),
    ],
)
def test_bad_configs_name_the_field(data, must_mention):
    with pytest.raises(ConfigError) as e:
        parse_config(data, origin="t.yaml")
    msg = str(e.value)
    assert msg.startswith("t.yaml")
    for m in must_mention:
        assert m in msg, msg


def test_overrides_apply_yaml_values(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("run: {seed: 1}\nfilters: [{kind: sanity}]\n")
    cfg = load_config(p, ["run.seed=7", "filters.0.min_size=12", "output.samples_per_shard=5"])
    assert cfg.run.seed == 7 and cfg.filters[0].min_size == 12 and cfg.output.samples_per_shard == 5


def test_missing_config_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_clear(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
