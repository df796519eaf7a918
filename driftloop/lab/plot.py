"""A PNG line chart of the windowed score over the stream, one line per method.

The score is the accuracy (in %) for a classification and the MAE for a regression (lower is
better; the axis starts at 0). Drawn with Pillow (already installed with Streamlit), so no
plotting library is needed: drift points are dashed vertical lines, gradual and incremental
drifts a shaded band; the legend gives each method's score after warm-up (or that it
failed). The chart is drawn at twice its size and scaled down, which smooths the lines.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from driftloop.lab.adaptation import AdaptationReport

Color = tuple[int, int, int]

COLORS: dict[str, Color] = {
    "driftloop": (214, 39, 40),
    "initial": (127, 127, 127),
    "periodic": (255, 127, 14),
    "hat": (44, 160, 44),
    "arf": (31, 119, 180),
    "logreg": (148, 103, 189),
    "linreg": (148, 103, 189),
}
_SPARE: tuple[Color, ...] = ((140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207))
_SCALE = 2


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _step(span: float) -> float:
    """A round tick step giving about 6 ticks over ``span``."""
    raw = span / 6
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10.0 * magnitude


def _dashed(draw: ImageDraw.ImageDraw, x: float, top: float, bottom: float, color: Color,
            width: int, dash: int) -> None:
    y = top
    while y < bottom:
        draw.line([(x, y), (x, min(bottom, y + dash))], fill=color, width=width)
        y += 2 * dash


def plot_accuracy(report: AdaptationReport, path: Path, *, size: tuple[int, int] = (1400, 700)
                  ) -> Path:
    """Write the chart of ``report`` (accuracy, or MAE for a regression) to ``path`` (PNG) and
    return the path."""
    s = _SCALE
    width, height = size[0] * s, size[1] * s
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    title, small = _font(18 * s), _font(13 * s)
    left, right, top, bottom = 70 * s, width - 330 * s, 50 * s, height - 60 * s

    scenario = report.scenario
    regression = scenario.task == "regression"
    x0, x1 = scenario.warmup, scenario.length
    values = [v for r in report.results for _, v in r.windows]
    if regression:
        y0 = 0.0
        tick = _step(max(values, default=1.0) or 1.0)
        y1 = tick * math.ceil(max(values, default=1.0) / tick) or tick
    else:
        y0 = max(0.0, math.floor(10 * min(values, default=0.5)) / 10 - 0.05)
        y0 = min(y0, 0.5)
        y1 = 1.0
        tick = 0.1

    def px(x: float) -> float:
        return left + (x - x0) / max(1, x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    for drift in scenario.drifts:
        if drift.end > drift.start:
            draw.rectangle([px(drift.start), top, px(drift.end), bottom], fill=(238, 238, 238))
    y = math.ceil(y0 / tick) * tick
    while y <= y1 + 1e-9:
        draw.line([(left, py(y)), (right, py(y))], fill=(225, 225, 225), width=s)
        label = f"{y:g}" if regression else f"{100 * y:.0f}%"
        draw.text((left - 8 * s, py(y)), label, fill="black", font=small, anchor="rm")
        y += tick
    step = _step(x1 - x0)
    x = math.ceil(x0 / step) * step
    while x <= x1:
        draw.line([(px(x), bottom), (px(x), bottom + 5 * s)], fill="black", width=s)
        draw.text((px(x), bottom + 8 * s), f"{x:,.0f}", fill="black", font=small, anchor="ma")
        x += step
    draw.rectangle([left, top, right, bottom], outline="black", width=s)
    for drift in scenario.drifts:
        _dashed(draw, px(drift.index), top, bottom, (90, 90, 90), s, 6 * s)
        draw.text((px(drift.index) + 4 * s, top + 4 * s), drift.kind, fill=(90, 90, 90),
                  font=small)

    spare = itertools.cycle(_SPARE)
    legend_y = top
    for result in report.results:
        color = COLORS.get(result.key) or next(spare)
        points = [(px(end - report.window / 2), py(acc)) for end, acc in result.windows]
        line_width = 3 * s if result.key == "driftloop" else 2 * s
        if len(points) > 1:
            draw.line(points, fill=color, width=line_width, joint="curve")
        elif points:
            draw.ellipse([points[0][0] - 3 * s, points[0][1] - 3 * s,
                          points[0][0] + 3 * s, points[0][1] + 3 * s], fill=color)
        if result.error is not None:
            summary = "failed"
        elif regression:
            summary = "MAE after warm-up " + (
                "-" if result.mae is None else f"{result.mae:.3f}")
        else:
            summary = "accuracy after warm-up " + (
                "-" if result.accuracy is None else f"{100 * result.accuracy:.1f}%")
        draw.line([(right + 20 * s, legend_y + 9 * s), (right + 50 * s, legend_y + 9 * s)],
                  fill=color, width=line_width)
        draw.text((right + 58 * s, legend_y), f"{result.name}", fill="black", font=small)
        draw.text((right + 58 * s, legend_y + 17 * s), summary, fill=(90, 90, 90), font=small)
        legend_y += 44 * s

    measure = "MAE" if regression else "accuracy"
    draw.text((left, 14 * s), f"Windowed {measure} ({report.window:,} events): scenario "
              f"{scenario.name}, {scenario.generator}", fill="black", font=title)
    draw.text(((left + right) / 2, height - 24 * s),
              f"event index (labels after {scenario.label_delay:,} events for "
              f"{100 * scenario.feedback_rate:.0f}% of requests)",
              fill="black", font=small, anchor="ma")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.resize(size, Image.Resampling.LANCZOS).save(path, format="PNG")
    return path
