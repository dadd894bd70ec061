package devhost

import (
	"encoding/json"
	"fmt"
	"os"
)

// Setting names devhost itself reads from local.settings.json (the handler's own keys are in
// internal/platform/config).
const (
	SettingWorkerRuntime = "FUNCTIONS_WORKER_RUNTIME"
	SettingFunctionKey   = "CONNECTHUB_DEVHOST_FUNCTION_KEY"
	SettingMasterKey     = "CONNECTHUB_DEVHOST_MASTER_KEY"
)

// SettingKeys lists them, for the test that local.settings.sample.json names exactly what is read.
var SettingKeys = []string{SettingWorkerRuntime, SettingFunctionKey, SettingMasterKey}

// LocalSettings is local.settings.json as Core Tools reads it.
type LocalSettings struct {
	IsEncrypted bool              `json:"IsEncrypted"`
	Values      map[string]string `json:"Values"`
	Host        struct {
		LocalHTTPPort int `json:"LocalHttpPort"`
	} `json:"Host"`
}

// ReadLocalSettings reads and checks a local.settings.json file.
func ReadLocalSettings(path string) (*LocalSettings, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read local settings: %w", err)
	}
	var s LocalSettings
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if s.IsEncrypted {
		return nil, fmt.Errorf("%s: encrypted settings are not supported by devhost", path)
	}
	if rt := s.Values[SettingWorkerRuntime]; rt != "custom" {
		return nil, fmt.Errorf("%s: %s must be \"custom\" for a custom handler, got %q", path, SettingWorkerRuntime, rt)
	}
	return &s, nil
}
