package config

// Presence is the presence-sync capability's configuration.
type Presence struct{}

// presenceKeys are the keys Presence reads (listed in Keys).
var presenceKeys = []Key{}

func loadPresence(get func(string) string, c *Config) []error { return nil }
