package core

import "unicode/utf8"

// Bounds of what one log attribute may hold. Ids we or Graph issue are GUIDs (36 bytes); anything much
// longer in an id was sent to fill the log, and a 1 MB POST must not become a 1 MB log line. Errors get
// more room: an Azure SDK error puts the request line, status and error code in its first few hundred
// bytes, which is what an operator needs, and the response body after them.
const (
	MaxLogValue = 256
	MaxLogError = 1024
)

// Clip returns s cut to at most limit bytes, on a rune boundary, with "…" marking a cut. Use it on every
// value an anonymous caller controls (ids, error texts that may quote them) before logging it.
func Clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const mark = "…"
	if limit <= len(mark) {
		return mark
	}
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// ClipErr is Clip(err.Error(), MaxLogError), "" for a nil error: wrapped errors can quote what a caller
// sent (a storage error names the key it was asked for, a joined error repeats one line per token).
func ClipErr(err error) string {
	if err == nil {
		return ""
	}
	return Clip(err.Error(), MaxLogError)
}
