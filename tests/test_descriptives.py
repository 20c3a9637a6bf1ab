"""Tables 2 and 3 against numpy/scipy computed independently."""

import numpy as np
from scipy import stats

from eqexp.report.descriptives import correlations, describe


def test_describe_matches_numpy(panel):
    row = describe(panel, ["quality"]).iloc[0]
    q = panel.quality.to_numpy()
    assert row.n == len(q)
    np.testing.assert_allclose([row["min"], row["max"], row["sd"], row["mean"]], [q.min(), q.max(), q.std(ddof=1), q.mean()])
    assert row["median"] == np.percentile(q, 50, method="averaged_inverted_cdf")


def test_correlations_match_scipy(panel):
    df = panel.copy()
    df.loc[df.index[:5], "scale"] = np.nan  # pairwise-complete rows, as pwcorr
    r, p = correlations(df, ["quality", "market", "scale"])
    sub = df[["quality", "scale"]].dropna()
    expected = stats.pearsonr(sub.quality, sub.scale)
    np.testing.assert_allclose(r.loc["scale", "quality"], expected.statistic, rtol=1e-12)
    np.testing.assert_allclose(p.loc["scale", "quality"], expected.pvalue, rtol=1e-8)
    assert (np.diag(r) == 1).all()
