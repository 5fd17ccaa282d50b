"""The world around the emulated switch: phones, carriers, callers, traffic and scenarios."""
