"""Array type aliases of the stand-in generator."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Array32 = npt.NDArray[np.float32]
#: An angle in degrees, constant or per frame ``(T,)``.
Angle = float | FloatArray
