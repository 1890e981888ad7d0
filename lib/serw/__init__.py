"""Perturbed senile reinforced random walks (thesis Chapter 2): law of tau, exact diffusivity, simulators.

Public API: :func:`diffusivity`, :func:`tau_survival`, :func:`simulate`, :func:`mean_square` (exact finite-n
E|S_n|^2), plus helpers (:func:`tau_moments`, :func:`reuse_probability`, :func:`simulate_reference`,
:mod:`asymptotics`). NumPy/SciPy/mpmath only: no torch.
"""

from .asymptotics import effective_eps, gamma_integral, gamma_integral_quad, log_squared_tail, tail_examples
from .finite import mean_square
from .renewal import (
    diffusion_from_moments,
    diffusivity,
    limited_mean,
    reuse_probability,
    tau_law,
    tau_moments,
    tau_survival,
)
from .simulate import simulate, simulate_reference

__all__ = [
    "simulate", "simulate_reference", "mean_square",
    "diffusivity", "tau_survival", "tau_moments", "tau_law", "reuse_probability", "limited_mean",
    "diffusion_from_moments", "gamma_integral", "gamma_integral_quad", "log_squared_tail", "tail_examples",
    "effective_eps",
]
