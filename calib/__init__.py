"""xyrt.calib: calibration data, quantization and engine building."""
