"""Convolution arithmetic explained: output sizes, whether a stride fits, parameter counts.

    output = (N + 2P - D(F-1) - 1) / S + 1            convolution (and pooling with P=0, D=1)
    output = (N - 1) S - 2P + D(F-1) + 1               transposed convolution

Frameworks round the first down; the lecture's point is that when it is not a
whole number the filter does not tile the input, and some border is never seen.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arithmetic:
    exact: float
    fits: bool
    output_size: int
    formula: str
    message: str
    effective_kernel_size: int
    uncovered: int
    parameters: int | None = None
    output_volume: tuple[int, int, int] | None = None


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def parameter_count(kernel_size: int, in_channels: int, filters: int) -> int:
    """Each filter has F*F*C weights and one bias: ``(F*F*C + 1) * K``."""
    return (kernel_size * kernel_size * in_channels + 1) * filters


def explain(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    *,
    transposed: bool = False,
    in_channels: int | None = None,
    filters: int | None = None,
) -> Arithmetic:
    """The output size along one axis with its formula written out, and a sentence saying what it means."""
    n, f, s, p, d = input_size, kernel_size, stride, padding, dilation
    span = d * (f - 1) + 1
    parameters = parameter_count(f, in_channels, filters) if in_channels and filters else None
    kernel_words = f"a {f}x{f} filter" + (f" with dilation {d}" if d > 1 else "")

    if transposed:
        size = (n - 1) * s - 2 * p + d * (f - 1) + 1
        formula = f"({n} - 1)*{s} - 2*{p} + {d}*({f}-1) + 1 = {size}"
        fits = size >= 1
        message = (
            f"each of the {n}x{n} inputs scatters {kernel_words} onto the output, {s} cells apart: "
            f"the output is {size}x{size}"
            if fits
            else f"padding {p} crops away the whole {size + 2 * p}x{size + 2 * p} output; use less padding"
        )
        return Arithmetic(
            float(size),
            fits,
            max(size, 0),
            formula,
            message,
            span,
            0,
            parameters,
            (filters, size, size) if filters and fits else None,
        )

    reach = n + 2 * p - span  # how far the window's top-left corner can travel
    exact = reach / s + 1
    formula = f"({n} + 2*{p} - {d}*({f}-1) - 1)/{s} + 1 = {_number(round(exact, 2))}"
    if reach < 0:
        message = (
            f"{kernel_words} spans {span} cells, more than the {n + 2 * p} cells of the "
            f"{n}x{n} input with padding {p}: it does not fit at all; use a smaller filter or more padding"
        )
        return Arithmetic(round(exact, 4), False, 0, formula, message, span, 0, parameters, None)

    size = reach // s + 1
    uncovered = reach % s
    fits = uncovered == 0
    volume = (filters, size, size) if filters else None
    if fits:
        message = f"{kernel_words} with stride {s} and padding {p} fits a {n}x{n} input: the output is {size}x{size}"
        return Arithmetic(round(exact, 4), True, size, formula, message, span, 0, parameters, volume)

    strides = [t for t in range(1, s + 3) if reach % t == 0 and t != s]
    paddings = [q for q in range(p + 1, p + s + 1) if (n + 2 * q - span) % s == 0][:1]
    hints = []
    if strides:
        hints.append("stride " + " or ".join(map(str, strides[:3])))
    if paddings:
        hints.append(f"padding {paddings[0]}")
    message = (
        f"{kernel_words} with stride {s} does not fit a {n}x{n} input: {_number(round(exact, 2))} is not a "
        f"whole number, so the last {uncovered} row{'s' if uncovered > 1 else ''} and column"
        f"{'s' if uncovered > 1 else ''} of the padded input are never covered "
        f"(frameworks silently round down to {size})"
    )
    if hints:
        message += "; try " + ", or ".join(hints)
    return Arithmetic(round(exact, 4), False, size, formula, message, span, uncovered, parameters, volume)
