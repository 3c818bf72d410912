//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

import Foundation
public import SimCore
public import Spec

/// A loaded, validated scenario: the base mesh, its variants, and how to run and rank them.
public struct Scenario: Sendable {
    /// One variant: a name and the mesh with its overrides applied.
    public struct Variant: Sendable {
        /// The variant's name (`base` when the file defines none).
        public var name: String
        /// What the variant changes, in words.
        public var description: String
        /// The resolved mesh.
        public var spec: MeshSpec
        /// The entry of `variants` it comes from (`base` when the file lists none); with a sweep, many variants
        /// share one.
        public var base: String = "base"
        /// With a `sweep`: the variant's label on each axis, in the order of ``Scenario/sweepAxes``.
        public var axisLabels: [String] = []
    }

    /// The scenario's name.
    public var name: String
    /// What the scenario models.
    public var description: String
    /// The file it was read from.
    public var file: String
    /// The file's text (hashed into `run.json`).
    public var source: String
    /// The first replication's seed; replication `i` uses `seed + i`.
    public var seed: UInt64
    /// How many replications (seeds) per variant.
    public var seeds: Int
    /// The metric that ranks variants in `comparison.csv`.
    public var rankBy: String
    /// The variants, in file order; a sweep's points follow each other with the first axis varying slowest.
    public var variants: [Variant]
    /// The names of the `sweep` axes, in file order (empty without a sweep).
    public var sweepAxes: [String] = []

    /// The most memory a run's reports may need: `timeseries.csv` rows are kept until the run ends.
    public static let maxReportBytes = 4 << 30

    /// The most `timeseries.csv` windows a replication of `spec` can close: those of `duration` and of `drain`.
    public static func windows(_ spec: MeshSpec) -> Double {
        (Double(spec.duration.nanoseconds) + Double(spec.drain.nanoseconds)) / Double(max(spec.window.nanoseconds, 1))
    }

    /// About how many bytes of `timeseries.csv` rows a run of `variants` × `seeds` makes: a row per window,
    /// variant and seed, each about 400 bytes of figures plus the scenario's and the variant's names.
    public static func reportBytes(name: String, variants: [Variant], seeds: Int) -> Double {
        var bytes = 0.0
        for variant in variants {
            let windows = Self.windows(variant.spec)
            // Too many windows is a problem of its own, reported at 'window'.
            if windows > Double(RunLimits.maxWindows) { continue }
            bytes += (windows + 2) * Double(seeds) * Double(name.utf8.count + variant.name.utf8.count + 400)
        }
        return bytes
    }

    /// What stops this scenario from running within the limits on windows and report memory, after command-line
    /// overrides of `seeds` or `duration`; nil when it can run.
    public var limitProblem: String? {
        for variant in variants where Self.windows(variant.spec) > Double(RunLimits.maxWindows) {
            return "variant \(variant.name): a duration of \(variant.spec.duration.formatted) and a drain of "
                + "\(variant.spec.drain.formatted) in windows of \(variant.spec.window.formatted) make more than "
                + "\(RunLimits.maxWindowsText) rows per replication"
        }
        let bytes = Self.reportBytes(name: name, variants: variants, seeds: seeds)
        if bytes > Double(Self.maxReportBytes) {
            return
                "\(variants.count) variant(s) × \(seeds) seed(s) would make about \(Int(bytes / Double(1 << 30))) GiB "
                + "of timeseries rows, more than the \(Self.maxReportBytes >> 30) GiB a run may hold"
        }
        return nil
    }

    /// Metrics a scenario may rank by, and whether larger is better.
    public static let rankMetrics: [(name: String, higherIsBetter: Bool)] = [
        ("success_rate", true), ("goodput_rps", true), ("mean_ms", false), ("p50_ms", false), ("p90_ms", false),
        ("p99_ms", false), ("p999_ms", false), ("max_ms", false), ("attempts_per_request", false),
    ]

    /// Loads and validates the scenario at `path`.
    ///
    /// - Throws: ``ScenarioValidationFailure`` listing every problem found.
    public static func load(path: String) throws -> Scenario {
        try parse(try readText(path: path), file: path)
    }

    /// The largest scenario file read (the bundled ones are under 10 KiB).
    public static let maxFileBytes = 16 << 20

    /// Reads a scenario file's text: a regular file of at most ``maxFileBytes`` holding UTF-8.
    ///
    /// A device (`/dev/zero`), a FIFO or a folder is refused before it is read, so that reading cannot block or
    /// run on for ever.
    ///
    /// - Throws: ``ScenarioValidationFailure`` saying why the file cannot be read, with the position of the first
    ///   byte that is not UTF-8.
    public static func readText(path: String) throws -> String {
        func failure(_ message: String, line: Int? = nil, column: Int? = nil) -> ScenarioValidationFailure {
            ScenarioValidationFailure(errors: [
                ScenarioError(.unreadable, file: path, line: line, column: column, keyPath: "", message: message)
            ])
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = String(cString: strerror(errno)).lowercased()
            throw failure("cannot read the file: \(reason)")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw failure("this is a folder, not a scenario file")
        case S_IFCHR, S_IFBLK: throw failure("this is a device, not a scenario file (a scenario is a YAML file)")
        case S_IFIFO: throw failure("this is a pipe (FIFO), not a scenario file: write the scenario to a file")
        default: throw failure("this is not a regular file")
        }
        guard Int(info.st_size) <= maxFileBytes else {
            throw failure("the file is \(info.st_size) bytes; a scenario file may be at most \(maxFileBytes >> 20) MiB")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw failure("cannot read the file: \(String(cString: strerror(errno)).lowercased())")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maxFileBytes + 1) ?? Data()
        } catch {
            throw failure("cannot read the file: \(error.localizedDescription)")
        }
        guard data.count <= maxFileBytes else {
            throw failure("the file grew past \(maxFileBytes >> 20) MiB while it was read")
        }
        if let bad = firstInvalidUTF8(data) {
            throw failure(
                "byte \(bad.offset + 1) is not UTF-8 (a scenario file is UTF-8 text; re-save it as UTF-8)",
                line: bad.line,
                column: bad.column
            )
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The position of the first byte sequence in `bytes` that is not UTF-8, if any.
    ///
    /// - Complexity: O(n).
    static func firstInvalidUTF8(_ bytes: some Collection<UInt8>) -> (offset: Int, line: Int, column: Int)? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        var line = 1
        var column = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                offset += encoded.count
                if encoded.count == 1 && encoded.first == 0x0A {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            case .emptyInput:
                return nil
            case .error:
                return (offset, line, column)
            }
        }
    }

    /// Parses and validates scenario text; `file` names it in messages.
    ///
    /// - Throws: ``ScenarioValidationFailure`` listing every problem found.
    public static func parse(_ text: String, file: String) throws -> Scenario {
        let tree: YAMLTree
        do {
            guard let parsed = try YAMLTree.parse(text) else {
                throw ScenarioValidationFailure(errors: [
                    ScenarioError(
                        .syntax,
                        file: file,
                        line: 1,
                        column: 1,
                        keyPath: "",
                        message: "the file is empty: a scenario needs at least 'duration', 'services' and 'clients'"
                    )
                ])
            }
            tree = parsed
        } catch let failure as ScenarioValidationFailure {
            throw failure
        } catch let problems as YAMLProblems {
            throw ScenarioValidationFailure(errors: problems.problems.map { syntaxError($0, file: file) })
        }
        var decoder = ScenarioDecoder(file: file)
        let scenario = decoder.decode(tree, source: text)
        guard decoder.reader.errors.isEmpty, let scenario else {
            // In file order; problems without a position (rare) come last, in the order found.
            let ordered = decoder.reader.errors.enumerated().sorted { a, b in
                let ka = (a.element.line ?? Int.max, a.element.column ?? Int.max, a.offset)
                let kb = (b.element.line ?? Int.max, b.element.column ?? Int.max, b.offset)
                return ka < kb
            }
            throw ScenarioValidationFailure(errors: ordered.map(\.element))
        }
        return scenario
    }

    /// Turns a YAML reading problem into a located scenario error.
    static func syntaxError(_ problem: YAMLProblem, file: String) -> ScenarioError {
        switch problem.kind {
        case .duplicateKey:
            return ScenarioError(
                .duplicate,
                file: file,
                line: problem.line,
                column: problem.column,
                keyPath: "",
                message: problem.message
            )
        case .limit:
            return ScenarioError(
                .tooLarge,
                file: file,
                line: problem.line,
                column: problem.column,
                keyPath: "",
                message: problem.message
            )
        case .syntax:
            return ScenarioError(
                .syntax,
                file: file,
                line: problem.line,
                column: problem.column,
                keyPath: "",
                message: "invalid YAML: " + problem.message
            )
        }
    }

    /// Keeps only the named variants.
    ///
    /// - Throws: ``ScenarioValidationFailure`` naming an unknown variant, with a suggestion.
    public func selecting(variants names: [String]) throws -> Scenario {
        guard !names.isEmpty else { return self }
        let known = variants.map(\.name)
        var errors: [ScenarioError] = []
        for name in names where !known.contains(name) {
            errors.append(
                ScenarioError(
                    .danglingReference,
                    file: file,
                    keyPath: "variants",
                    message: "no variant named '\(name)' (variants: \(known.joined(separator: ", ")))",
                    suggestion: closestName(to: name, among: known).map { "did you mean '\($0)'?" }
                )
            )
        }
        if !errors.isEmpty { throw ScenarioValidationFailure(errors: errors) }
        var copy = self
        copy.variants = variants.filter { names.contains($0.name) }
        return copy
    }

    /// The scenario with every variant's duration replaced (the warm-up is shortened to fit).
    public func withDuration(_ duration: SimDuration) -> Scenario {
        var copy = self
        for i in copy.variants.indices {
            copy.variants[i].spec.duration = duration
            if copy.variants[i].spec.warmup >= duration { copy.variants[i].spec.warmup = .zero }
        }
        return copy
    }
}
