"""Leaderboard plots draw every interval as given, also one that leaves out its own point estimate."""

import numpy as np
import pandas as pd

from charbench.leaderboard.plots import draw_intervals, headline_plot


def test_an_interval_that_excludes_its_point_is_drawn_not_refused(tmp_path):
    # A percentile bootstrap interval of a biased statistic (an Elo spread) can lie wholly above its point;
    # the demo's leaderboard once failed here with matplotlib's "'xerr' must not contain negative values".
    frame = pd.DataFrame({"column": ["spread"] * 3, "variant": ["a", "b", "c"], "value": [300.0, 480.0, np.nan],
                          "low": [350.0, 380.0, 1.0], "high": [560.0, 530.0, 2.0]})
    written = headline_plot(frame, tmp_path)
    assert len(written) == 1 and written[0].stat().st_size > 0


def test_intervals_span_low_to_high_and_skip_unknown_bounds():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_intervals(ax, np.array([1.0, 5.0]), np.array([0.0, 1.0]), np.array([2.0, np.nan]), np.array([3.0, 6.0]))
    segments = ax.collections[0].get_segments()
    assert len(segments) == 1 and np.allclose(segments[0], [[2.0, 0.0], [3.0, 0.0]])
    plt.close(fig)
