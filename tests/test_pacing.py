"""Every pacing family against the formulas of REFERENCE.md, computed here independently.

The reference values are computed in 50-digit decimal arithmetic straight from the formulas
(uncapped u, no shared code with curriculum.pacing), rounded as the module documents (to 6
decimals, then ceil for Hacohen & Weinshall's families and floor for Wu et al.'s) and clamped to
[batch size, M].
"""

import itertools
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

import pytest

from curriculum.pacing import PACINGS, Pacing, make_pacing
from scoring.errors import UserError

M, B, T = 1000, 10, 500
C = Decimal(10)


def _rounded(x: Decimal, mode) -> int:
    x = min(x, Decimal(M + 1))  # huge values (exp-ramp far past a T) are clamped to M anyway
    return int(x.quantize(Decimal("1e-6")).to_integral_value(rounding=mode))


def reference(name: str, params: dict, t: int) -> int:
    """REFERENCE.md "Pacing functions", clamped to [B, M]."""
    with localcontext() as ctx:
        ctx.prec = 50
        p = {k: Decimal(str(v)) for k, v in params.items() if k != "stage_lengths"}
        m = Decimal(M)
        if name in ("exp", "varied-exp", "single-step"):
            start = p.get("start", Decimal("0.04"))
            inc = p.get("inc", Decimal("1.9"))
            # no stage length given: derived so that all data is open by half the budget T
            stages = next(k for k in itertools.count() if start * inc**k >= 1)
            derived = max(1, int(Decimal(T) / 2 / stages))
            if name == "varied-exp" and "stage_lengths" not in params:
                params = {**params, "stage_lengths": [derived]}
            if name == "exp":
                k = t // int(p.get("stage_length", derived))
            elif name == "varied-exp":
                # increase points: cumulative sums of the stage lengths, the last length repeating
                lengths = itertools.chain(params["stage_lengths"], itertools.repeat(params["stage_lengths"][-1]))
                points = itertools.accumulate(lengths)
                k = sum(1 for _ in itertools.takewhile(lambda q: q <= t, points))
            if name == "single-step":
                value = start * m if t < int(p.get("stage_length", max(1, T // 2))) else m
            else:
                value = min(start * inc ** min(k, 200), Decimal(1)) * m
            size = _rounded(value, ROUND_CEILING)
        else:
            a, b = p.get("a", Decimal("0.8")), p.get("b", Decimal("0.2"))
            u = Decimal(t) / (a * T)
            shape = {
                "linear": lambda: u,
                "quad": lambda: u**2,
                "root": lambda: u.sqrt(),
                "exp-ramp": lambda: ((C * u).exp() - 1) / (C.exp() - 1),
                "log": lambda: 1 + (u + (-C).exp()).ln() / C,
            }
            if name == "step":
                value = b * m + m * int(u)  # u >= 0, so int() is floor
            else:
                value = b * m + (1 - b) * m * shape[name]()
            size = _rounded(value, ROUND_FLOOR)
    return min(max(size, B), M)


CASES = [
    ("exp", {}),
    ("exp", {"start": 0.1, "inc": 2.0, "stage_length": 30}),
    ("exp", {"start": 0.001, "inc": 1.5, "stage_length": 7}),  # start below the batch: clamped up
    ("varied-exp", {"stage_lengths": [20, 50, 10]}),
    ("varied-exp", {}),
    ("varied-exp", {"start": 0.2, "inc": 1.3, "stage_lengths": [100]}),
    ("single-step", {}),
    ("single-step", {"start": 0.37, "stage_length": 40}),
    *[
        (name, params)
        for name in ("linear", "quad", "root", "step", "exp-ramp", "log")
        for params in (
            {},
            {"a": 0.5, "b": 0.1},
            {"a": 1, "b": 0},
            {"a": 0.05, "b": 0.3},
            {"a": 2.0, "b": 0.0025},
            {"a": 10, "b": 1},
        )
    ],
]


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_every_family_follows_the_reference_formula(name, params):
    pacing = make_pacing(name, num_examples=M, batch_size=B, total_steps=T, **params)
    assert isinstance(pacing, PACINGS[name])
    steps = [*range(0, 2 * T + 1), 5 * T, 100 * T]  # t = 0, every step, the end and past it
    sizes = [pacing(t) for t in steps]
    assert sizes == [reference(name, params, t) for t in steps]
    assert all(B <= s <= M for s in sizes)
    assert sizes == sorted(sizes)  # no family ever shrinks the open prefix
    assert pacing(100 * T) == M


def test_every_registered_family_is_covered():
    assert {name for name, _ in CASES} == set(PACINGS)


def test_hacohen_defaults_give_their_published_schedule():
    # start 0.04 of 2500 examples = 100 = one batch, times 1.9 every 100 batches
    exp = make_pacing("exp", num_examples=2500, batch_size=100, stage_length=100)
    assert [exp(t) for t in (0, 99, 100, 199, 200, 300)] == [100, 100, 190, 190, 361, 686]
    assert exp(500) == 2477  # ceil(2500 * 0.04 * 1.9**5) = ceil(2476.099)
    assert exp(600) == 2500  # 0.04 * 1.9**6 > 1: all data


@pytest.mark.parametrize("name", sorted(PACINGS))
def test_without_a_stage_length_every_family_opens_all_data_within_the_budget(name):
    # digits: 1347 examples, batch 100, 280 steps (20 epochs)
    pacing = make_pacing(name, num_examples=1347, batch_size=100, total_steps=280)
    full = pacing.full_at()
    bound = 140 if name in ("exp", "varied-exp", "single-step") else int(0.8 * 280)
    assert full is not None and full <= bound and pacing(full) == 1347
    assert full == 0 or pacing(full - 1) < 1347


def test_the_published_stage_length_on_a_small_budget_never_opens_all_data():
    pacing = make_pacing("exp", num_examples=1347, batch_size=100, total_steps=280, stage_length=100)
    assert pacing.full_at() is None and pacing(279) == 195  # 100 -> 103 -> 195: 14 % of digits
    assert make_pacing("exp", num_examples=1347, batch_size=100, total_steps=280).stage_length == 23  # floor(140 / 6)
    with pytest.raises(UserError, match="derives its stage length from the step budget"):
        make_pacing("exp", num_examples=1347, batch_size=100)


def test_wu_families_reach_all_data_at_a_times_T():
    for name in ("linear", "quad", "root", "step", "exp-ramp", "log"):
        pacing = make_pacing(name, num_examples=M, batch_size=B, total_steps=T, a=0.4, b=0.1)
        assert pacing(0) == 100  # b M
        assert pacing(int(0.4 * T)) == M
        if name != "log":  # log overshoots M just before a T
            assert pacing(int(0.4 * T) - 1) < M


def test_varied_exp_with_one_length_is_exp():
    exp = make_pacing("exp", num_examples=M, batch_size=B, stage_length=37)
    varied = make_pacing("varied-exp", num_examples=M, batch_size=B, stage_lengths=[37])
    assert [exp(t) for t in range(2000)] == [varied(t) for t in range(2000)]


def test_whole_floats_are_accepted_for_counts_and_huge_steps_do_not_overflow():
    pacing = make_pacing("exp", num_examples=M, batch_size=B, stage_length=100.0, inc=1.01)
    assert pacing(10**9) == M
    assert make_pacing("exp-ramp", num_examples=M, batch_size=B, total_steps=T, a=0.01)(10**9) == M


BAD = [
    ("exp", {"start": 0}, "(0, 1]"),
    ("exp", {"start": 1.5}, "(0, 1]"),
    ("exp", {"start": "half"}, "(0, 1]"),
    ("exp", {"inc": 1.0}, "> 1"),
    ("exp", {"inc": 0.5}, "> 1"),
    ("exp", {"stage_length": 0}, ">= 1"),
    ("exp", {"stage_length": 2.5}, ">= 1"),
    ("single-step", {"start": -0.1}, "(0, 1]"),
    ("single-step", {"stage_length": -3}, ">= 1"),
    ("varied-exp", {"steps": []}, "steps"),
    ("varied-exp", {"steps": "100"}, "steps"),
    ("varied-exp", {"stage_lengths": [10, 0]}, ">= 1"),
    *[
        (name, bad, text)
        for name in ("linear", "quad", "root", "step", "exp-ramp", "log")
        for bad, text in (
            ({"a": 0}, "(0, 10]"),
            ({"a": 10.5}, "(0, 10]"),
            ({"a": float("nan")}, "(0, 10]"),
            ({"b": -0.1}, "[0, 1]"),
            ({"b": 1.1}, "[0, 1]"),
        )
    ],
    ("exp", {"rate": 2}, "start, inc, stage_length"),
    ("linear", {"start": 0.1}, "a, b"),
    ("cosine", {}, "exp, varied-exp, single-step, linear"),
]


@pytest.mark.parametrize("name,params,text", BAD, ids=[f"{n}-{p}" for n, p, _ in BAD])
def test_bad_parameters_raise_one_clear_user_error(name, params, text):
    with pytest.raises(UserError) as err:
        make_pacing(name, num_examples=M, batch_size=B, total_steps=T, **params)
    assert text in str(err.value)
    assert str(err.value).endswith(".")


def test_bad_sizes_raise_user_errors():
    with pytest.raises(UserError, match="batch size"):
        make_pacing("exp", num_examples=5, batch_size=10)
    with pytest.raises(UserError, match="total number of training steps"):
        make_pacing("linear", num_examples=M, batch_size=B)
    with pytest.raises(UserError, match="num_examples"):
        make_pacing("exp", num_examples=0, batch_size=1)


def test_a_negative_step_is_a_programming_error():
    pacing = make_pacing("exp", num_examples=M, batch_size=B, stage_length=100)
    with pytest.raises(ValueError):
        pacing(-1)


def test_a_custom_family_only_needs_size():
    class Half(Pacing):
        name, params = "half", ()

        def size(self, t):
            return self.num_examples // 2

    pacing = Half(num_examples=M, batch_size=B)
    assert pacing(0) == pacing(10**6) == M // 2


def test_varied_exp_takes_any_sequence_of_lengths():
    kw = dict(num_examples=M, batch_size=B)
    listed = make_pacing("varied-exp", stage_lengths=[5, 10], **kw)
    as_tuple = make_pacing("varied-exp", stage_lengths=(5, 10), **kw)
    assert [listed(t) for t in range(100)] == [as_tuple(t) for t in range(100)]
    with pytest.raises(UserError, match="non-empty list"):
        make_pacing("varied-exp", stage_lengths=5, **kw)
