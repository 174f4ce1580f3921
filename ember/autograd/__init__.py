"""Reverse-mode automatic differentiation, with PyTorch's ``torch.autograd`` API."""

from ember.autograd import functional
from ember.autograd.anomaly_mode import detect_anomaly, set_detect_anomaly
from ember.autograd.engine import backward, grad
from ember.autograd.function import FunctionCtx, once_differentiable
from ember.autograd.function import TensorFunction as Function
from ember.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from ember.autograd.grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                                      set_grad_enabled)
from ember.autograd.variable import Variable

__all__ = ["Function", "FunctionCtx", "backward", "grad", "gradcheck", "gradgradcheck",
           "GradcheckError", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "once_differentiable", "detect_anomaly", "set_detect_anomaly",
           "functional", "Variable"]
