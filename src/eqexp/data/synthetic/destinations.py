"""The destinations file: ISO3 code, name and World Bank income group (held fixed), with each one's weight in the flows."""

from __future__ import annotations

import pandas as pd

# Destinations: ISO3 code, name, World Bank income group (high / other, held fixed), weight.
DESTINATIONS: tuple[tuple[str, str, str, float], ...] = (
    ("USA", "United States", "high", 20.0), ("HKG", "Hong Kong", "high", 12.0), ("JPN", "Japan", "high", 10.0),
    ("KOR", "Korea", "high", 5.0), ("DEU", "Germany", "high", 5.0), ("NLD", "Netherlands", "high", 4.0),
    ("GBR", "United Kingdom", "high", 4.0), ("SGP", "Singapore", "high", 2.0), ("TWN", "Taiwan", "high", 2.0),
    ("ITA", "Italy", "high", 2.0), ("FRA", "France", "high", 2.0), ("AUS", "Australia", "high", 2.0),
    ("CAN", "Canada", "high", 2.0), ("ESP", "Spain", "high", 1.2), ("BEL", "Belgium", "high", 1.0),
    ("ARE", "United Arab Emirates", "high", 1.5), ("SAU", "Saudi Arabia", "high", 1.0), ("POL", "Poland", "high", 0.6),
    ("CHL", "Chile", "high", 0.5), ("RUS", "Russia", "other", 2.0), ("IND", "India", "other", 2.0),
    ("BRA", "Brazil", "other", 1.5), ("MYS", "Malaysia", "other", 1.5), ("MEX", "Mexico", "other", 1.0),
    ("IDN", "Indonesia", "other", 1.0), ("THA", "Thailand", "other", 1.0), ("VNM", "Viet Nam", "other", 1.0),
    ("PHL", "Philippines", "other", 0.8), ("TUR", "Turkey", "other", 0.8), ("ZAF", "South Africa", "other", 0.7),
    ("NGA", "Nigeria", "other", 0.5), ("IRN", "Iran", "other", 0.5), ("PAK", "Pakistan", "other", 0.5),
    ("EGY", "Egypt", "other", 0.4), ("ARG", "Argentina", "other", 0.4), ("UKR", "Ukraine", "other", 0.4),
    ("KAZ", "Kazakhstan", "other", 0.4), ("BGD", "Bangladesh", "other", 0.4), ("COL", "Colombia", "other", 0.3),
    ("PER", "Peru", "other", 0.3),
)


def destinations() -> pd.DataFrame:
    """destination, name, income_group, weight (the generator's; the written file drops the weight)."""
    return pd.DataFrame(DESTINATIONS, columns=["destination", "name", "income_group", "weight"])
