"""Load generation: payloads, send schedules and the engines that drive HTTP load."""
