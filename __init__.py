"""Stillflow: turn one still photograph into a seamless looping video of fluid motion.

This file only registers and unregisters the Blender side. It imports nothing from Blender at module
level, so `stillflow.core` and the `stillflow` command import without bpy.
"""


def register():
    from . import operators

    operators.register()


def unregister():
    from . import operators

    operators.unregister()
