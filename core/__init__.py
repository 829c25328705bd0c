"""Stillflow's engine: hints, Euler integration, symmetric softmax splatting. Never imports bpy."""
