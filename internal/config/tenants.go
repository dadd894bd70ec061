package config

// Tenants is the tenant lifecycle, licensing and retention configuration.
type Tenants struct{}

// tenantKeys are the keys Tenants reads (listed in Keys).
var tenantKeys = []Key{}

func loadTenants(get func(string) string, c *Config) []error { return nil }
