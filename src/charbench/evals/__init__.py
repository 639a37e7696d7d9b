"""Named, versioned suites: which tasks, at which sizes, on which variants."""
