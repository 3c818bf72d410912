import SimCore

/// The instant `seconds` seconds after the start.
func t(_ seconds: Int64) -> SimInstant { SimInstant.zero + .seconds(seconds) }

/// The instant `milliseconds` milliseconds after the start.
func tms(_ milliseconds: Int64) -> SimInstant { SimInstant.zero + .milliseconds(milliseconds) }

/// One nanosecond after `instant`.
func justAfter(_ instant: SimInstant) -> SimInstant { instant + .nanoseconds(1) }
