"""The runtime: reads only what generate wrote; imports heavy libraries inside functions."""
