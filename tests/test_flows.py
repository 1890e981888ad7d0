"""lib.flows against closed forms: pure diffusion and a shear flow (Taylor dispersion)."""

import numpy as np
import pytest

from lib.flows import effective_diffusivity, euler_step, loglog_slope, shear_diffusivity, splitting_step, velocity


@pytest.mark.parametrize("scheme", ["splitting", "euler"])
def test_zero_flow_gives_molecular_diffusivity(scheme):
    d0 = np.array([0.01, 0.1, 1.0])
    r = effective_diffusivity(d0, 0.0, t_end=20.0, dt=0.1, n_particles=4000, seed=1, flow="none", scheme=scheme)
    de, se = np.array(r["de"]), np.array(r["stderr"])
    # (Delta x)^2 / (2 t D0) is chi-square(1): relative standard error sqrt(2 / N) = 2.2%
    assert np.allclose(se / d0, np.sqrt(2 / 4000), rtol=0.15)
    assert np.all(np.abs(de - d0) < 4 * se)


def test_shear_flow_matches_closed_form():
    d0s, t_end = np.array([0.5, 1.0, 2.0]), 40.0
    r = effective_diffusivity(d0s, 0.0, t_end=t_end, dt=0.02, n_particles=4000, seed=2, flow="shear")
    exact = np.array([shear_diffusivity(d, t_end) for d in d0s])
    de, se = np.array(r["de"]), np.array(r["stderr"])
    assert np.all(np.abs(de - exact) < 4 * se), (de, exact, se)
    # the finite-time value approaches the t -> infinity limit D0 + 1/(2 D0)
    assert abs(shear_diffusivity(1.0, 1e9) - 1.5) < 1e-8
    # the y direction sees no flow: D^E = D0
    ry = effective_diffusivity(1.0, 0.0, t_end=t_end, dt=0.02, n_particles=4000, seed=3, flow="shear",
                               direction=(0.0, 1.0))
    assert abs(ry["de"][0] - 1.0) < 4 * ry["stderr"][0]


def test_velocity_is_divergence_free_and_matches_1_1():
    rng = np.random.default_rng(0)
    x, y, t = rng.uniform(0, 7, 50), rng.uniform(0, 7, 50), 0.7
    u, w = velocity(x, y, t, theta=1.0)
    assert np.allclose(u, np.cos(y) + np.cos(t) * np.sin(y))
    assert np.allclose(w, np.cos(x) + np.cos(t) * np.sin(x))
    h = 1e-6  # du/dx + dw/dy = 0 by finite differences
    div = (velocity(x + h, y, t, 1.0)[0] - velocity(x - h, y, t, 1.0)[0]
           + velocity(x, y + h, t, 1.0)[1] - velocity(x, y - h, t, 1.0)[1]) / (2 * h)
    assert np.abs(div).max() < 1e-8


def _jacobian_det(step, n_steps=50, dt=0.2, eps=1e-6):
    base = np.array([0.3, 1.1])
    finals = []
    for p in (base, base + [eps, 0], base + [0, eps]):
        x, y = np.array([p[0]]), np.array([p[1]])
        for n in range(n_steps):
            x, y = step(x, y, n * dt, dt, 1.0)
        finals.append([x.item(), y.item()])
    f = np.array(finals)
    return np.linalg.det(np.column_stack([(f[1] - f[0]) / eps, (f[2] - f[0]) / eps]))


def test_splitting_preserves_area_euler_does_not():
    """The splitting step is a composition of shears: Jacobian determinant 1, as for the flow."""
    assert abs(_jacobian_det(splitting_step) - 1) < 1e-4
    assert abs(_jacobian_det(euler_step) - 1) > 1e-2


def test_reproducible_and_bad_input():
    a = effective_diffusivity(0.1, 1.0, t_end=5, dt=0.1, n_particles=50, seed=7)
    b = effective_diffusivity(0.1, 1.0, t_end=5, dt=0.1, n_particles=50, seed=7)
    assert a == b
    with pytest.raises(ValueError, match="d0"):
        effective_diffusivity(-1.0)
    with pytest.raises(ValueError, match="theta"):
        effective_diffusivity(0.1, theta=2.0)
    with pytest.raises(ValueError, match="dt"):
        effective_diffusivity(0.1, t_end=1.0, dt=2.0)
    with pytest.raises(ValueError, match="direction"):
        effective_diffusivity(0.1, direction=(1.0, 1.0))
    with pytest.raises(ValueError, match="flow"):
        effective_diffusivity(0.1, flow="turbulent")
    assert abs(loglog_slope([1e-3, 1e-2, 1e-1], [1e-3 ** 0.5, 1e-2 ** 0.5, 1e-1 ** 0.5]) - 0.5) < 1e-12
