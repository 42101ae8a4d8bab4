"""Graph backends. Everything backend-specific (client library, index syntax, result types)
stays inside this package."""
