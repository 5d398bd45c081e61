"""Performance measurement: step timing, the GPU check, teacher-cache and data-stage figures."""
