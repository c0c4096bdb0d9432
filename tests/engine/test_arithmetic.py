"""The size arithmetic in words: a rectangular layer is described axis by axis, a square one as a square."""

from engine.arithmetic import explain_layer


def test_a_rectangular_layer_is_described_axis_by_axis_with_its_own_sizes():
    layer = explain_layer((5, 7), (3, 2), stride=(1, 2))
    assert layer.output_shape == (3, 3)
    assert (
        layer.height.message
        == "the filter's height 3 with stride 1 and padding 0 fits an input height of 5: the output height is 3"
    )
    assert layer.width.message.startswith(
        "the filter's width 2 with stride 2 does not fit an input width of 7: 3.50 is not"
    )
    assert "the last 1 column of the padded input is never covered" in layer.width.message
    square = explain_layer((5, 5), (3, 3))
    assert square.height.message == "a 3x3 filter with stride 1 and padding 0 fits a 5x5 input: the output is 3x3"
