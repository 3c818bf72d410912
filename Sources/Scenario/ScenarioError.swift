//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

/// One problem in a scenario file, located by file, line, column and key path.
public struct ScenarioError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem; errors compare equal by code only, so tests can match on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The file is not valid YAML.
        public static let syntax = Code("syntax")
        /// A key that the format does not have.
        public static let unknownKey = Code("unknown-key")
        /// A required key is absent.
        public static let missingField = Code("missing-field")
        /// A value of the wrong type (a list where a number belongs, …).
        public static let wrongType = Code("wrong-type")
        /// A value outside its allowed range.
        public static let outOfRange = Code("out-of-range")
        /// A name that refers to nothing (service, zone, client).
        public static let danglingReference = Code("dangling-reference")
        /// A name given twice.
        public static let duplicate = Code("duplicate")
        /// A distribution that cannot be built.
        public static let badDistribution = Code("bad-distribution")
        /// A duration without a unit, or otherwise unreadable.
        public static let badDuration = Code("bad-duration")
        /// An unknown algorithm, kind or enumeration value.
        public static let unknownName = Code("unknown-name")
        /// The file cannot be read.
        public static let unreadable = Code("unreadable")
        /// The file, or what it asks for, passes a limit on size or memory.
        public static let tooLarge = Code("too-large")
    }

    /// The kind of problem.
    public var code: Code
    /// The scenario file.
    public var file: String
    /// 1-based line and column of the offending text, when known.
    public var line: Int?
    /// 1-based column.
    public var column: Int?
    /// Where in the document: `services.api.calls[0].timeout`.
    public var keyPath: String
    /// What is wrong and what was expected.
    public var message: String
    /// A likely correction, e.g. "did you mean 'timeout'?".
    public var suggestion: String?

    /// Creates an error.
    public init(
        _ code: Code,
        file: String,
        line: Int? = nil,
        column: Int? = nil,
        keyPath: String,
        message: String,
        suggestion: String? = nil
    ) {
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = Self.shortened(keyPath)
        self.message = Self.shortened(message)
        self.suggestion = suggestion.map { Self.shortened($0) }
    }

    /// The longest key path, message or suggestion kept whole; a longer one (which quotes a long key or value from
    /// the file) keeps its start and says how much was left out.
    public static let maxTextLength = 1_000

    static func shortened(_ text: String) -> String {
        guard text.utf8.count > maxTextLength else { return text }
        let kept = text.prefix(maxTextLength)
        return kept + "… (\(text.count - kept.count) more characters)"
    }

    public static func == (lhs: ScenarioError, rhs: ScenarioError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// `file:line:column: error: key.path: message (did you mean 'x'?)`.
    public var description: String {
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        text += ": error: "
        if !keyPath.isEmpty { text += keyPath + ": " }
        text += message
        if let suggestion { text += " (\(suggestion))" }
        return text
    }
}

/// Every problem found in a scenario; thrown when there is at least one.
public struct ScenarioValidationFailure: Error, Sendable, CustomStringConvertible {
    /// The problems, in the order of the file.
    public var errors: [ScenarioError]

    /// Creates a failure.
    public init(errors: [ScenarioError]) { self.errors = errors }

    /// The most problems listed one by one; the rest are counted.
    public static let maxListed = 100

    public var description: String {
        var lines = errors.prefix(Self.maxListed).map(\.description)
        if errors.count > Self.maxListed {
            lines.append("… and \(errors.count - Self.maxListed) more problems, not listed")
        }
        return lines.joined(separator: "\n") + "\n\(errors.count) problem\(errors.count == 1 ? "" : "s") found"
    }
}
