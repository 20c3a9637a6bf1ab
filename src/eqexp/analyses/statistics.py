"""tests.csv rows: every statistic of every test, in one long format."""


def test_rows(model: str, test: str, values: dict) -> list[dict]:
    """Long format of tests.csv: one row per (model, test, statistic); `test.` key prefixes are dropped."""
    return [{"model": model, "test": test, "statistic": k.removeprefix(f"{test}."), "value": v} for k, v in values.items()]
