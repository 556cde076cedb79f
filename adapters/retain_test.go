package adapters

import "testing"

// Readings are retained unless a config says otherwise, so a dashboard that
// subscribes late sees the last value at once (issue 6: "retained last value").
func TestRetainDefaultsToTrue(t *testing.T) {
	if !(SensorConfig{}).RetainLast() {
		t.Error("a sensor without retain: must publish retained")
	}
	off := false
	if (SensorConfig{Retain: &off}).RetainLast() {
		t.Error("retain: false must publish not retained")
	}
	for _, c := range DefaultSensors() {
		if !c.RetainLast() {
			t.Errorf("default sensor %s is not retained", c.Name)
		}
	}
}
