"""make_grid / save_image and ember.vision.io against layouts computed here."""

import numpy as np
import pytest

import ember
from ember.vision import io as vio
from ember.vision.utils import make_grid, save_image

Image = pytest.importorskip("PIL.Image")


def test_make_grid_layout_and_padding():
    x = ember.rand(5, 3, 4, 6)
    g = make_grid(x, nrow=2, padding=1, pad_value=0.25).numpy()
    assert g.shape == (3, 3 * 5 + 1, 2 * 7 + 1) and g.dtype == np.float32
    for k in range(5):
        r, c = divmod(k, 2)
        np.testing.assert_array_equal(
            g[:, 1 + r * 5 : 1 + r * 5 + 4, 1 + c * 7 : 1 + c * 7 + 6], x.numpy()[k]
        )
    assert (g[:, 0, :] == 0.25).all() and (g[:, 11:, 8:] == 0.25).all()  # empty last cell


def test_make_grid_channels_lists_and_single_images():
    one = ember.rand(1, 4, 4)
    assert make_grid(one).shape == (3, 4, 4)  # single gray image -> 3 channels, no padding
    assert make_grid(ember.rand(4, 4)).shape == (3, 4, 4)
    g = make_grid([ember.rand(1, 4, 4), ember.rand(1, 4, 4)], padding=0)
    assert g.shape == (3, 4, 8)
    with pytest.raises(TypeError, match="tensor or list of tensors expected"):
        make_grid([np.zeros((1, 2, 2))])


def test_make_grid_normalize():
    x = ember.tensor(np.array([[[[0.0, 2.0]]], [[[4.0, 6.0]]]], np.float32))
    g = make_grid(x, padding=0, normalize=True).numpy()[0]
    np.testing.assert_allclose(g, [[0.0, 1 / 3, 2 / 3, 1.0]], rtol=1e-6)
    g = make_grid(x, padding=0, normalize=True, scale_each=True).numpy()[0]
    np.testing.assert_allclose(g, [[0.0, 1.0, 0.0, 1.0]])
    g = make_grid(x, padding=0, normalize=True, value_range=(0.0, 4.0)).numpy()[0]
    np.testing.assert_allclose(g, [[0.0, 0.5, 1.0, 1.0]])
    assert float(x.numpy().max()) == 6.0  # input untouched
    with pytest.raises(TypeError, match="value_range has to be a tuple"):
        make_grid(x, normalize=True, value_range=[0, 1])


def test_save_image_rounds_like_torchvision(tmp_path):
    x = ember.tensor(np.array([[[0.0, 0.5, 0.999, 1.2]]], np.float32))
    save_image(x, tmp_path / "a.png")
    img = Image.open(tmp_path / "a.png")
    assert img.mode == "RGB" and img.size == (4, 1)
    assert np.asarray(img)[0, :, 0].tolist() == [0, 128, 255, 255]  # x * 255 + 0.5, clamped
    save_image(ember.rand(6, 3, 5, 5), tmp_path / "b.png", nrow=3, padding=1)
    assert Image.open(tmp_path / "b.png").size == (3 * 6 + 1, 2 * 6 + 1)


def test_read_write_png(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    vio.write_png(ember.tensor(arr), str(tmp_path / "x.png"))
    back = vio.read_image(str(tmp_path / "x.png"))
    assert back.dtype == ember.uint8
    np.testing.assert_array_equal(back.numpy(), arr)
    gray = vio.read_image(str(tmp_path / "x.png"), vio.ImageReadMode.GRAY)
    assert gray.shape == (1, 5, 7)
    data = vio.read_file(str(tmp_path / "x.png"))
    np.testing.assert_array_equal(vio.decode_image(data).numpy(), arr)
