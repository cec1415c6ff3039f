// Package bytesize writes byte counts the way people read them in a
// summary or a table: 1023 B, 1.0 KiB, 7.8 GiB.
package bytesize

import "fmt"

// Format gives n in binary units with one decimal.
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
