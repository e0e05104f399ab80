"""``manage.py allocate``: the engine on a JSON file, as documented in docs/allocation-format.md."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent.parent

INSTANCE = {
    "pools": [
        {"id": "hokkaido-h200", "class": "H200", "capacity": 800},
        {"id": "osaka-h200", "class": "H200", "capacity": 400},
        {"id": "tokyo-b200", "class": "B200", "capacity": 300},
    ],
    "requests": [
        {"org": "kyoto-u", "class": "H200", "demand": 700, "weight": 1},
        {
            "org": "medi-lab",
            "class": "H200",
            "demand": 600,
            "weight": 2,
            "floor": 100,
            "pools": ["osaka-h200"],
        },
        {"org": "startup-a", "class": "H200", "demand": 200},
        {"org": "startup-b", "class": "H200", "demand": 500, "weight": 0.5},
        {"org": "kyoto-u", "class": "B200", "demand": 400},
        {"org": "startup-a", "class": "B200", "demand": 100},
    ],
}


@pytest.fixture
def instance_file(tmp_path):
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(INSTANCE), encoding="utf-8")
    return path


def test_it_writes_the_documented_result(instance_file, tmp_path):
    output = tmp_path / "result.json"

    call_command("allocate", input=str(instance_file), output=str(output))

    result = json.loads(output.read_text(encoding="utf-8"))
    h200 = next(c for c in result["classes"] if c["class"] == "H200")
    assert h200["bottlenecks"] == [
        {"level": 200.0, "pools": ["osaka-h200"]},
        {"level": 400.0, "pools": ["hokkaido-h200"]},
    ]
    lines = {(a["org"], a["class"]): a for a in result["allocations"]}
    assert {key: a["granted"] for key, a in lines.items()} == {
        ("kyoto-u", "B200"): 200,
        ("startup-a", "B200"): 100,
        ("kyoto-u", "H200"): 400,
        ("medi-lab", "H200"): 400,
        ("startup-a", "H200"): 200,
        ("startup-b", "H200"): 200,
    }
    assert lines["medi-lab", "H200"] == {
        "org": "medi-lab",
        "class": "H200",
        "demand": 600,
        "weight": 2.0,
        "floor": 100,
        "granted": 400,
        "exact": 400.0,
        "level": 200.0,
        "stopped": "pools_exhausted",
        "exhausted_pools": ["osaka-h200"],
        "bottleneck": 0,
        "placement": {"osaka-h200": 400},
    }
    assert lines["kyoto-u", "H200"]["placement"] == {"hokkaido-h200": 400}


def test_the_documented_example_is_what_the_command_prints(instance_file):
    out = StringIO()
    call_command("allocate", input=str(instance_file), stdout=out)

    doc = (ROOT / "docs/allocation-format.md").read_text(encoding="utf-8")
    documented_instance = json.loads(doc.split("```json\n")[1].split("```")[0])
    assert documented_instance == INSTANCE
    result = json.loads(out.getvalue())
    documented_result = json.loads(doc.split("```json\n")[2].split("```")[0])
    for documented_class in documented_result["classes"]:
        assert documented_class in result["classes"]
    for documented_line in documented_result["allocations"]:
        assert documented_line in result["allocations"]


def test_it_prints_to_stdout_without_output(instance_file):
    out = StringIO()

    call_command("allocate", input=str(instance_file), stdout=out)

    assert json.loads(out.getvalue())["classes"][0]["class"] == "B200"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{not json",
            "is not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
        ),
        (json.dumps({"pools": [], "requests": [{"org": "a", "class": "H200", "demand": -1}]}), "has no pool"),
        (
            json.dumps(
                {
                    "pools": [{"id": "p", "class": "H200", "capacity": 10}],
                    "requests": [{"org": "a", "class": "H200", "demand": 20, "floor": 15}],
                }
            ),
            "the floors of a add up to 15 GPU-hours, but the pools they may use (p) hold only 10 GPU-hours.",
        ),
        (
            json.dumps({"pools": [{"id": "p", "class": "H200", "capacity": "ten"}], "requests": []}),
            "the capacity must be a whole number of GPU-hours, not 'ten'",
        ),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(tmp_path, content, message):
    source = tmp_path / "instance.json"
    source.write_text(content, encoding="utf-8")
    output = tmp_path / "result.json"

    with pytest.raises(CommandError) as caught:
        call_command("allocate", input=str(source), output=str(output))

    assert message in str(caught.value)
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_a_refused_instance_leaves_an_earlier_result_untouched(tmp_path):
    source = tmp_path / "instance.json"
    source.write_text(json.dumps({"pools": [], "requests": [], "x": 1}), encoding="utf-8")
    output = tmp_path / "result.json"
    output.write_text("earlier", encoding="utf-8")

    with pytest.raises(CommandError, match='unknown key "x"'):
        call_command("allocate", input=str(source), output=str(output))

    assert output.read_text(encoding="utf-8") == "earlier"


def test_a_missing_input_file_is_reported(tmp_path):
    with pytest.raises(CommandError, match=r"cannot read .*missing\.json"):
        call_command("allocate", input=str(tmp_path / "missing.json"))


def test_it_exits_non_zero_with_the_problems_on_stderr(tmp_path):
    source = tmp_path / "instance.json"
    source.write_text(json.dumps({"pools": [], "requests": [{"org": "a", "class": "H200", "demand": -1}]}))

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "allocate",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert "the demand must not be negative (-1)" in result.stderr
    assert 'class "H200" has no pool (request lines 1)' in result.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.django_db
def test_seed_allocations_loads_a_published_and_an_open_round_once():
    from io import StringIO

    from django.core.management import CommandError, call_command

    from apps.allocations.models import AllocationRound
    from apps.providers.models import QuotaGrant, UsageMonth

    with pytest.raises(CommandError):
        call_command("seed_allocations", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # calls seed_allocations
    rounds = {r.name: r for r in AllocationRound.objects.all()}
    assert {r.status for r in rounds.values()} == {"published", "open"}
    published = next(r for r in rounds.values() if r.status == "published")
    grants = QuotaGrant.objects.filter(source_ref=f"round-{published.pk}")
    assert grants.exists() and UsageMonth.objects.filter(grant__in=grants).exists()
    call_command("seed_allocations", stdout=StringIO())
    assert AllocationRound.objects.count() == 2
    assert QuotaGrant.objects.filter(source_ref=f"round-{published.pk}").count() == grants.count()


# --- poison input: a clear message and exit status 1, no traceback, no file left behind ----------------

LINE = '{"org": %s, "class": %s, "demand": %s, "weight": %s}'
POOL = '{"id": %s, "class": "H200", "capacity": %s}'


def _instance_text(*, org='"a"', gpu_class='"H200"', demand="10", weight="1", pool_id='"p"', capacity="100"):
    pool, line = POOL % (pool_id, capacity), LINE % (org, gpu_class, demand, weight)
    return f'{{"pools": [{pool}], "requests": [{line}]}}'


POISON_INSTANCES = [
    (_instance_text(capacity="9" * 5000), "not valid JSON"),  # more digits than Python parses
    (_instance_text(capacity="9" * 4000), "the capacity must be at most"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (_instance_text(org="[" * 70 + "]" * 70), "nested too deeply"),
    (_instance_text(weight="1" + "0" * 400), "the weight must be between 1e-06 and 1e+06"),
    (_instance_text(weight="1e400"), "the weight must be a positive number, not inf"),
    (_instance_text(weight="5e-324"), "the weight must be between 1e-06 and 1e+06"),
    (_instance_text(weight="1e-7"), "the weight must be between"),
    (_instance_text(weight="1000001"), "the weight must be between"),
    (_instance_text(weight="NaN"), "not valid JSON: NaN"),
    (_instance_text(demand="-Infinity"), "not valid JSON: -Infinity"),
    (_instance_text(demand="1e400"), "the demand must be a whole number of GPU-hours, not inf"),
    (_instance_text(org='"\\ud800"'), "lone surrogate"),
    (_instance_text(org='"org-\\udfff-x"'), "lone surrogate"),
    (_instance_text(gpu_class='"\\ud83d"', pool_id='"p"'), "lone surrogate"),
    (_instance_text(pool_id='"\\udc00"'), "lone surrogate"),
    (_instance_text(org='{"a": [1, {"b": null}]}'), "the org must be a non-empty string"),
]


@pytest.mark.parametrize(("content", "message"), POISON_INSTANCES)
def test_poison_instances_get_a_message_and_leave_no_file(tmp_path, content, message):
    source = tmp_path / "instance.json"
    source.write_text(content, encoding="utf-8")
    output = tmp_path / "result.json"

    with pytest.raises(CommandError) as caught:
        call_command("allocate", input=str(source), output=str(output))

    assert message in str(caught.value)
    str(caught.value).encode("utf-8")  # printable whatever the input held
    assert list(tmp_path.iterdir()) == [source]


def test_bytes_that_are_not_utf8_are_refused(tmp_path):
    source = tmp_path / "instance.json"
    source.write_bytes(b'{"pools": [], "requests": [], "x": "\xff"}')
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("allocate", input=str(source), output=str(tmp_path / "r.json"))
    assert list(tmp_path.iterdir()) == [source]


def test_a_lone_surrogate_exits_1_without_a_traceback_or_a_temporary_file(tmp_path):
    source = tmp_path / "instance.json"
    source.write_text(_instance_text(org='"\\ud800"'), encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "allocate",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "lone surrogate" in result.stderr
    assert list(tmp_path.iterdir()) == [source]


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in the output")

    return json.loads(text, parse_constant=refuse)


def test_the_extreme_weights_allowed_still_give_strict_json(tmp_path):
    source = tmp_path / "instance.json"
    source.write_text(
        json.dumps(
            {
                "pools": [{"id": "p", "class": "H200", "capacity": 10**15}],
                "requests": [
                    {"org": "tiny", "class": "H200", "demand": 10**15, "weight": 1e-6},
                    {"org": "huge", "class": "H200", "demand": 10**15, "weight": 1e6},
                    {"org": "日本語-組織", "class": "H200", "demand": 5, "weight": 1},
                ],
            }
        ),
        encoding="utf-8",
    )
    output = tmp_path / "result.json"
    call_command("allocate", input=str(source), output=str(output))
    result = _strict(output.read_text(encoding="utf-8"))
    assert {a["org"] for a in result["allocations"]} == {"tiny", "huge", "日本語-組織"}
    assert sum(a["granted"] for a in result["allocations"]) == 10**15


@pytest.mark.parametrize("amount", [10**9, 10**12, 10**15])
def test_large_amounts_are_rounded_within_the_band(tmp_path, amount):
    """With a relative snap of 1e-9, 333333331.67 GPU-hours rounded up to 333333332 for two orgs at
    once and the engine raised "rounding left the floor/ceiling band" (a traceback)."""
    source = tmp_path / "instance.json"
    lines = [
        {"org": "a", "class": "H200", "demand": amount, "weight": 1},
        {"org": "b", "class": "H200", "demand": amount, "weight": 2},
        {"org": "c", "class": "H200", "demand": 5},
    ]
    source.write_text(
        json.dumps({"pools": [{"id": "p", "class": "H200", "capacity": amount}], "requests": lines}),
        encoding="utf-8",
    )
    out = StringIO()
    call_command("allocate", input=str(source), stdout=out)
    granted = {a["org"]: a["granted"] for a in _strict(out.getvalue())["allocations"]}
    assert sum(granted.values()) == amount and granted["c"] == 5
    assert abs(granted["b"] - 2 * granted["a"]) <= 3


# Generated poison: the documented instance with one value replaced by anything JSON can hold (and
# some things only Python's parser accepts), or text that is not an instance at all.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**15 - 2, max_value=10**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([5e-324, 1e-7, 1e-6, 1e6, 1e308])
    | st.text(max_size=6)
    | st.sampled_from(["\ud800", "a\udfffb", "\x00", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def poisoned_instances(draw):
    instance = json.loads(json.dumps(INSTANCE))
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(["pools", "requests"]))
        item = draw(st.sampled_from(instance[section]))
        key = draw(st.sampled_from([*item.keys(), "weight", "floor", "pools", "extra"]))
        item[key] = draw(JSON_VALUES)
    return json.dumps(instance)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=poisoned_instances() | st.text(max_size=40) | JSON_VALUES.map(json.dumps))
def test_fuzzed_instances_give_strict_json_or_a_message_and_no_stray_file(tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("fuzz")
    source = folder / "instance.json"
    source.write_text(content, encoding="utf-8", errors="surrogatepass")
    output = folder / "result.json"
    try:
        call_command("allocate", input=str(source), output=str(output))
    except CommandError as error:
        str(error).encode("utf-8")
        assert sorted(folder.iterdir()) == [source]
    else:
        _strict(output.read_text(encoding="utf-8"))
        assert sorted(folder.iterdir()) == sorted([source, output])
