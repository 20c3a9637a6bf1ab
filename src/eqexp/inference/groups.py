"""Do coefficients differ across groups? (methods §5)

1. `interacted_model` + `wald_equality`: the fully interacted stacked regression (every
   regressor and every FE interacted with the group) and Wald tests on it. With every FE
   interacted, the stacked model is the groups' own regressions side by side, so
   `stack_groups` builds it from the groups' absorbed regressors and residuals, with
   pyfixest's conventions for that model; `interacted_model` estimates the interacted
   formula with `pf.feols` and is the reference the tests hold `stack_groups` to;
2. `suest_difference`: pairwise b_g − b_h with the stacked (suest-equivalent) covariance;
3. `permutation_test`: Lian's `bdiff` Fisher permutation, labels permuted across firms.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from eqexp.distributions import chi2_sf, f_sf, norm_sf
from eqexp.inference import InferenceError
from eqexp.inference.extreme import share_at_least, share_at_most
from eqexp.inference.hypothesis import HypothesisTest, p_test
from eqexp.inference.firm_moments import (
    FirmMoments,
    Progress,
    check_columns,
    print_progress,
    run_draws,
)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class InteractedModel:
    """Per-group coefficients of the stacked model and their joint firm-clustered V.

    coef[g, j] is regressor j in group groups[g]; vcov is ordered group-major, so entry
    g * len(regressors) + j belongs to coef[g, j].
    """

    group: str
    groups: tuple[Hashable, ...]
    regressors: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    n_obs: int
    n_clusters: int

    def position(self, g: int, term: str) -> int:
        return g * len(self.regressors) + self.regressors.index(term)


def pair_name(groups: Sequence[Hashable]) -> str:
    """`SOE vs non-SOE`: the groups a test compares."""
    return " vs ".join(map(str, groups))


@dataclass(frozen=True)
class WaldTest:
    """Wald test that `terms` are equal across `groups`: χ²(q) and F(q, G − 1)."""

    groups: tuple[Hashable, ...]
    terms: tuple[str, ...]
    chi2: float
    q: int
    p_chi2: float
    f: float
    df_denom: int
    p_f: float

    def tests(self) -> list[HypothesisTest]:
        """The χ² test and its F(q, G − 1) version, as Stata's `test` reports both."""
        pair, null = pair_name(self.groups), f"{', '.join(self.terms)} equal in {' and '.join(map(str, self.groups))}"
        return [p_test("wald", pair, null, self.chi2, self.p_chi2, "chi2", self.q),
                p_test("wald_f", pair, null, self.f, self.p_f, "F", self.q, self.df_denom)]


@dataclass(frozen=True)
class Difference:
    """b_g − b_h for one term: z from the stacked V (with covariance) and the naive z."""

    term: str
    groups: tuple[Hashable, Hashable]
    diff: float
    se: float
    z: float
    p: float
    se_naive: float
    z_naive: float
    p_naive: float

    def tests(self) -> list[HypothesisTest]:
        """z from the stacked V (`suest`) and the naive z that ignores Cov(b_g, b_h) (`suest_naive`)."""
        hypothesis, null = f"{self.term}: {pair_name(self.groups)}", f"{self.term} equal in {' and '.join(map(str, self.groups))}"
        return [p_test("suest", hypothesis, null, self.z, self.p, "normal", estimate=self.diff, se=self.se),
                p_test("suest_naive", hypothesis, null, self.z_naive, self.p_naive, "normal", estimate=self.diff, se=self.se_naive)]


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class PermutationResult:
    """Firm-level Fisher permutation test of d = b(groups[0]) − b(groups[1]) per term.

    p_upper = #{d_k ≥ d0}/K is Lian's one-sided "Freq/K"; p_min_tail = min(p_upper,
    #{d_k ≤ d0}/K) is what pybdiff labels two-sided; p_two_sided = min(1, 2·p_min_tail) is
    the equal-tailed two-sided p. A draw tied with d0 counts in both tails (`extreme`), so
    a permutation that gives back the observed grouping counts whatever the rounding.
    """

    groups: tuple[Hashable, Hashable]
    terms: tuple[str, ...]
    observed: np.ndarray
    draws: np.ndarray
    p_upper: np.ndarray
    p_min_tail: np.ndarray
    p_two_sided: np.ndarray
    seed: int

    def tests(self) -> list[HypothesisTest]:
        """Per term: Lian's one-sided p (`bdiff`), the smaller tail (`bdiff_min_tail`, pybdiff's "two-sided") and the equal-tailed two-sided p."""
        pair, (g, h) = pair_name(self.groups), self.groups
        out = []
        for j, term in enumerate(self.terms):
            hypothesis, more = f"{term}: {pair}", {"estimate": float(self.observed[j]), "draws": len(self.draws), "seed": self.seed}
            for test, p, null in (("bdiff", self.p_upper, f"{term} no larger in {g} than in {h}"),
                                  ("bdiff_min_tail", self.p_min_tail, f"{term} equal in {g} and {h} (the smaller one-sided p)"),
                                  ("bdiff_two_sided", self.p_two_sided, f"{term} equal in {g} and {h}")):
                out.append(p_test(test, hypothesis, null, float(self.observed[j]), float(p[j]), "permutation", **more))
        return out


def interacted_model(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    group: str,
    firm: str = "firm",
    other_fe: Sequence[str] = ("year",),
    cluster: str | None = None,
    **feols_kwargs,
) -> InteractedModel:
    """Fully interacted stacked regression, firm-clustered (or `cluster`) CRV1.

    y ~ Σ_g D_g·X | firm^group + fe^group: the per-group coefficients equal the separate
    group regressions, and a time-varying group (e.g. period) gets its own firm effects.
    Extra keyword arguments go to `pyfixest.feols`.
    """
    check_columns(df, [outcome, *regressors, group, firm, *other_fe])
    codes, levels = pd.factorize(df[group], sort=True)
    if len(levels) < 2:
        raise InferenceError(f"group column {group!r} has {len(levels)} level; need 2 or more")
    gid = f"{group}__id"
    names = [[f"{r}__g{g}" for r in regressors] for g in range(len(levels))]
    columns = {
        name: df[r].where(codes == g, 0.0)
        for g, row in enumerate(names)
        for r, name in zip(regressors, row)
    }
    data = df[[outcome, firm, *other_fe]].assign(**columns, **{gid: codes})
    fixed = " + ".join(f"{fe}^{gid}" for fe in [firm, *other_fe])
    flat = [name for row in names for name in row]
    import pyfixest as pf

    fit = pf.feols(
        f"{outcome} ~ {' + '.join(flat)} | {fixed}",
        data,
        vcov={"CRV1": cluster or firm},
        **feols_kwargs,
    )
    dropped = sorted(set(flat) - set(fit._coefnames))
    if dropped:
        raise InferenceError(f"collinear within a group, dropped by pyfixest: {dropped}")
    order = [list(fit._coefnames).index(name) for name in flat]
    return InteractedModel(
        group=group,
        groups=tuple(levels.tolist()),
        regressors=tuple(regressors),
        coef=fit.coef().to_numpy()[order].reshape(len(levels), len(regressors)),
        vcov=fit._vcov[np.ix_(order, order)],
        n_obs=int(fit._N),
        n_clusters=int(fit._G[0]),
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class GroupDesign:
    """One group's estimation sample: absorbed outcome and regressors, cluster and FE values per row."""

    name: Hashable
    yd: np.ndarray  # absorbed outcome (n_g)
    xd: np.ndarray  # absorbed regressors (n_g × k)
    clusters: np.ndarray  # each row's cluster, coded alike in every group
    fe_codes: np.ndarray  # (n_g, n_fe) each row's level of each fixed effect, 0..L-1 within the group


def stack_groups(designs: Sequence[GroupDesign], regressors: Sequence[str], fe_names: Sequence[str], cluster: str) -> InteractedModel:
    """The fully interacted model `y ~ Σ_g D_g·X | fe^group …`, clustered by `cluster`, from its groups.

    Coefficients are the groups' own regressions; V is CRV1 over the stacked scores (a
    cluster present in several groups correlates their coefficients), with pyfixest's
    small-sample factor for the interacted formula: N and k summed over the groups, each
    FE's levels counted per group, levels nested in the clusters left out.
    """
    from eqexp.ols import Clusters, cluster_sums, nested_levels, small_sample, solve

    designs = sorted(designs, key=lambda d: d.name)
    if len(designs) < 2:
        raise InferenceError(f"need 2 or more groups; got {len(designs)}")
    k, sizes = len(regressors), [len(d.yd) for d in designs]
    cluster_codes, levels = pd.factorize(np.concatenate([d.clusters for d in designs]))
    bounds = np.cumsum([0, *sizes])
    coef, bread, score_sums = [], np.zeros((k * len(designs),) * 2), []
    for g, d in enumerate(designs):
        beta, resid, inverse = solve(d.xd, d.yd, regressors)
        coef.append(beta)
        bread[g * k : (g + 1) * k, g * k : (g + 1) * k] = inverse
        sums = cluster_sums(d.xd * resid[:, None], cluster_codes[bounds[g] : bounds[g + 1]])
        score_sums.append(np.vstack([sums, np.zeros((len(levels) - len(sums), k))]))  # clusters beyond the group's last
    # fe^group: a group's levels follow the previous groups' levels
    offsets = np.cumsum([np.zeros(len(fe_names), np.int64), *(d.fe_codes.max(axis=0) + 1 for d in designs)], axis=0)
    fe_codes = np.vstack([d.fe_codes + offset for d, offset in zip(designs, offsets)])
    k_fe = offsets[-1]
    names = [f"{fe}^group" for fe in fe_names]
    nested, n_nested = nested_levels(names, fe_codes, Clusters((cluster,), cluster_codes[:, None]), k_fe)
    n_obs = int(bounds[-1])
    factor, _ = small_sample(n_obs, k * len(designs), int(k_fe.sum()), len(fe_names), "CRV", len(levels), nested, n_nested)
    stacked = np.hstack(score_sums)
    return InteractedModel(
        group="group",
        groups=tuple(d.name for d in designs),
        regressors=tuple(regressors),
        coef=np.vstack(coef),
        vcov=factor * bread @ (stacked.T @ stacked) @ bread,
        n_obs=n_obs,
        n_clusters=len(levels),
    )


def wald_equality(model: InteractedModel, terms: Sequence[str]) -> tuple[WaldTest, ...]:
    """Wald tests that `terms` (e.g. X and X²) are equal across groups.

    Two groups: one test. Three or more: the joint test across all groups first, then
    every pair. F uses G − 1 denominator degrees of freedom, like Stata's `test`.
    """
    n = len(model.groups)
    tests = [_wald(model, terms, [(0, g) for g in range(1, n)])]
    if n > 2:
        tests += [_wald(model, terms, [pair]) for pair in combinations(range(n), 2)]
    return tuple(tests)


def suest_difference(model: InteractedModel, terms: Sequence[str]) -> tuple[Difference, ...]:
    """For each term and pair of groups: b_g − b_h, normal z and p.

    se uses the stacked V, including Cov(b_g, b_h) ≠ 0 when firms appear in both groups;
    se_naive = sqrt(V_gg + V_hh) from the same V ignores it (zero for firm-level groups).
    """
    out = []
    for term in terms:
        for g, h in combinations(range(len(model.groups)), 2):
            i, j = model.position(g, term), model.position(h, term)
            diff = float(model.coef.flat[i] - model.coef.flat[j])
            var_naive = model.vcov[i, i] + model.vcov[j, j]
            se = float(np.sqrt(var_naive - 2 * model.vcov[i, j]))
            se_naive = float(np.sqrt(var_naive))
            out.append(
                Difference(
                    term=term,
                    groups=(model.groups[g], model.groups[h]),
                    diff=diff,
                    se=se,
                    z=diff / se,
                    p=float(2 * norm_sf(abs(diff / se))),
                    se_naive=se_naive,
                    z_naive=diff / se_naive,
                    p_naive=float(2 * norm_sf(abs(diff / se_naive))),
                )
            )
    return tuple(out)


def permuted_members(rng: np.random.Generator, labels: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """`size` independent permutations of 0/1 per-firm labels (group sizes in firms kept), as the
    firms (size, m) that each draws for the smaller label, and that label.

    A permutation of 0/1 labels is a uniformly drawn set of firms for the smaller label;
    drawing just that set costs a fraction of shuffling all G labels.
    """
    labels = np.asarray(labels, dtype=float)
    if not np.isin(labels, (0.0, 1.0)).all():
        raise InferenceError("labels must be 0/1 (membership of the first group)")
    n_firms, ones = len(labels), int(labels.sum())
    drawn, value = (ones, 1.0) if ones <= n_firms - ones else (n_firms - ones, 0.0)
    members = np.empty((size, drawn), dtype=np.intp)
    for row in members:
        row[:] = rng.choice(n_firms, drawn, replace=False)
    return members, value


def permute_firm_labels(rng: np.random.Generator, labels: np.ndarray, size: int) -> np.ndarray:
    """(size, G) independent permutations of 0/1 per-firm labels (`permuted_members`, spelled out)."""
    members, value = permuted_members(rng, labels, size)
    out = np.full((size, len(labels)), 1.0 - value)
    np.put_along_axis(out, members, value, axis=1)
    return out


def permutation_test(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    group: str,
    terms: Sequence[str],
    firm: str = "firm",
    other_fe: Sequence[str] = ("year",),
    draws: int = 1000,
    seed: int = 0,
    progress: Progress | None = print_progress("permutation test"),
) -> PermutationResult:
    """Lian's `bdiff` permutation test with group labels permuted across firms.

    Each group's model is `outcome ~ regressors | firm + other_fe` on that group's rows;
    d = b(first level) − b(second level), levels in sorted order. Firm-level permutation
    keeps each firm's rows together, so it requires a group that is constant within firm;
    the draws are exact OLS from per-firm moments.
    """
    check_columns(df, [outcome, *regressors, group, firm, *other_fe])
    levels = sorted(df[group].unique().tolist())
    if len(levels) != 2:
        raise InferenceError(f"the permutation test compares two groups; {group!r} has {levels}")
    (result,) = permutation_tests(df, outcome, regressors, group, terms, [tuple(levels)], firm, other_fe, draws, seed, progress)
    return result


def permutation_tests(
    df: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    group: str,
    terms: Sequence[str],
    pairs: Sequence[tuple[Hashable, Hashable]],
    firm: str = "firm",
    other_fe: Sequence[str] = ("year",),
    draws: int = 1000,
    seed: int = 0,
    progress: Progress | None = print_progress("permutation test"),
) -> tuple[PermutationResult, ...]:
    """`permutation_test` for each pair of groups (each on its two groups' firms), from one
    set of per-firm moments; each pair's draws start from `seed`."""
    check_columns(df, [outcome, *regressors, group, firm, *other_fe])
    varying = int((df.groupby(firm)[group].nunique() > 1).sum())
    if varying:
        raise InferenceError(
            f"{group!r} varies within {varying} firms (e.g. a period split): permuting labels "
            "across firms needs a time-invariant group, otherwise the labels are not "
            "exchangeable under H0. Use wald_equality / suest_difference instead."
        )
    moments = FirmMoments.from_frame(df, outcome, regressors, firm, other_fe)
    labels = df.groupby(firm)[group].first().reindex(moments.firms).to_numpy()
    del df  # the draws need only the moments (the caller passes a frame it does not keep)
    results = []
    for pair in pairs:
        first_level, second_level = sorted(pair)
        in_pair = np.isin(labels, [first_level, second_level])
        first = (labels[in_pair] == first_level).astype(float)  # firm weights of the first group
        results.append(_permute(moments, np.flatnonzero(in_pair), first, (first_level, second_level), regressors, terms, draws, seed, progress))
    return tuple(results)


# A draw's set of firms at most this share of the pair is summed sparsely (`FirmMoments.sum_over`).
_SPARSE_SHARE = 1 / 8


def _permute(moments: FirmMoments, pair: np.ndarray, first: np.ndarray, levels: tuple, regressors: Sequence[str],
             terms: Sequence[str], draws: int, seed: int, progress: Progress | None) -> PermutationResult:
    """The draws of one pair of groups: its firms are `moments`' rows `pair`, `first` marks the first group's.

    A draw sums the moments of the firms it picks for the smaller group. When that group is small
    they are summed as a set, on all firms' moments; otherwise with dense 0/1 weights, on the
    pair's own moments (a copy when the pair leaves firms out).
    """
    sparse = min(first.sum(), len(first) - first.sum()) <= _SPARSE_SHARE * len(first)
    if not sparse and len(pair) < moments.n_firms:
        moments, pair = moments.subset(pair), np.arange(len(pair))
    in_pair, in_first = np.zeros(moments.n_firms), np.zeros(moments.n_firms)
    in_pair[pair], in_first[pair] = 1.0, first
    total = moments.aggregate(in_pair)
    cols = [list(regressors).index(t) for t in terms]

    def difference(first_sums: np.ndarray) -> np.ndarray:
        return moments.solve(first_sums)[..., 0, cols] - moments.solve(total - first_sums)[..., 0, cols]

    def permuted(size: int) -> np.ndarray:
        if not sparse:
            return moments.aggregate(permute_firm_labels(rng, first, size))
        members, value = permuted_members(rng, first, size)
        drawn = moments.sum_over(pair[members])
        return drawn if value else total - drawn

    rng = np.random.default_rng(seed)
    perm = run_draws(lambda size: difference(permuted(size)), draws, len(pair), progress)
    observed = difference(moments.aggregate(in_first))
    p_upper = share_at_least(perm, observed)
    p_min_tail = np.minimum(p_upper, share_at_most(perm, observed))
    return PermutationResult(
        groups=levels,
        terms=tuple(terms),
        observed=observed,
        draws=perm,
        p_upper=p_upper,
        p_min_tail=p_min_tail,
        p_two_sided=np.minimum(1.0, 2 * p_min_tail),
        seed=seed,
    )


def _wald(model: InteractedModel, terms: Sequence[str], pairs: list[tuple[int, int]]) -> WaldTest:
    restriction = np.zeros((len(pairs) * len(terms), model.vcov.shape[0]))
    for row, ((g, h), term) in enumerate((pair, t) for pair in pairs for t in terms):
        restriction[row, model.position(g, term)] = 1
        restriction[row, model.position(h, term)] = -1
    gap = restriction @ model.coef.ravel()
    chi2 = float(gap @ np.linalg.solve(restriction @ model.vcov @ restriction.T, gap))
    q, df_denom = len(gap), model.n_clusters - 1
    involved = sorted({i for pair in pairs for i in pair})
    return WaldTest(
        groups=tuple(model.groups[i] for i in involved),
        terms=tuple(terms),
        chi2=chi2,
        q=q,
        p_chi2=float(chi2_sf(chi2, q)),
        f=chi2 / q,
        df_denom=df_denom,
        p_f=float(f_sf(chi2 / q, q, df_denom)),
    )
