import Foundation
import Synchronization
import Testing
import Yams

/// Structural mutations of the bundled scenarios, each validated by the built binary under a 4 GiB address-space
/// limit and a time limit: every case must end with exit 0, 64 or 65 and, when refused, messages located in the
/// file — never a signal, a trap, a hang or a runaway allocation.
///
/// Unlike the value mutations in `MutationFuzzTests`, these change the document's shape: keys deleted and
/// duplicated, scalars, lists and mappings swapped, anchors and aliases (and alias chains) inserted, huge and tiny
/// numbers, NaN and infinities, deep nesting, long strings and unicode keys.
@Suite("Structural fuzzing of scenario files")
struct StructuralFuzzTests {
    /// A YAML document the fuzzer edits: plain values, plus anchors and aliases.
    indirect enum Tree {
        case scalar(String)
        case sequence([Tree])
        case mapping([(key: String, value: Tree)])
        /// An alias to the node carrying `&name`.
        case alias(String)
        /// A node carrying the anchor `&name`.
        case anchored(String, Tree)

        init(_ node: Node) {
            switch node {
            case .scalar(let scalar): self = .scalar(scalar.string)
            case .sequence(let sequence): self = .sequence(sequence.map(Tree.init))
            case .mapping(let mapping):
                self = .mapping(mapping.map { (key: $0.key.string ?? "?", value: Tree($0.value)) })
            case .alias: self = .scalar("alias")
            }
        }

        /// The node as flow-style YAML.
        func yaml(into out: inout String) {
            switch self {
            case .scalar(let text): out += Self.quoted(text)
            case .sequence(let items):
                out += "["
                for (i, item) in items.enumerated() {
                    if i > 0 { out += ", " }
                    item.yaml(into: &out)
                }
                out += "]"
            case .mapping(let pairs):
                out += "{"
                for (i, pair) in pairs.enumerated() {
                    if i > 0 { out += ", " }
                    out += Self.quoted(pair.key) + ": "
                    pair.value.yaml(into: &out)
                }
                out += "}"
            case .alias(let name): out += "*" + name
            case .anchored(let name, let tree):
                out += "&" + name + " "
                tree.yaml(into: &out)
            }
        }

        /// `text` plain when that is safe in flow context, else double-quoted with escapes.
        static func quoted(_ text: String) -> String {
            let plain =
                !text.isEmpty
                && text.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                        || byte == 0x2E || byte == 0x5F || byte == 0x2B
                } && !text.hasPrefix(".")
            if plain { return text }
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7F {
                        out += String(format: "\\x%02X", scalar.value)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }

        /// The number of nodes (an anchored node counts once, with its content).
        var count: Int {
            switch self {
            case .scalar, .alias: return 1
            case .sequence(let items): return 1 + items.reduce(0) { $0 + $1.count }
            case .mapping(let pairs): return 1 + pairs.reduce(0) { $0 + $1.value.count }
            case .anchored(_, let tree): return tree.count
            }
        }

        /// Replaces the `index`th node in pre-order with `transform` of it.
        mutating func update(_ index: Int, _ transform: (Tree) -> Tree) {
            var remaining = index
            self = Self.update(self, &remaining, transform)
        }

        private static func update(_ tree: Tree, _ remaining: inout Int, _ transform: (Tree) -> Tree) -> Tree {
            if remaining == 0 {
                remaining = -1
                return transform(tree)
            }
            if remaining < 0 { return tree }
            switch tree {
            case .scalar, .alias:
                remaining -= 1
                return tree
            case .sequence(let items):
                remaining -= 1
                return .sequence(items.map { update($0, &remaining, transform) })
            case .mapping(let pairs):
                remaining -= 1
                return .mapping(pairs.map { (key: $0.key, value: update($0.value, &remaining, transform)) })
            case .anchored(let name, let inner):
                return .anchored(name, update(inner, &remaining, transform))
            }
        }

        /// The `index`th node in pre-order.
        func node(_ index: Int) -> Tree {
            var found = self
            var copy = self
            copy.update(index) { node in
                found = node
                return node
            }
            return found
        }
    }

    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }

    static let numbers = [
        "1e308", "-1e308", "1e-320", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "18446744073709551616", "NaN", "nan", ".nan", "inf", "-inf", ".inf", "Infinity", "0", "-0", "1ns", "0ns",
        "0.5ns", "8760h", "8761h", "2562047h", "99999999999999h", "1e18ns", "1e400", "0x7fffffff", "1_000_000",
        "exponential:mean=1e308s", "pareto:shape=0.0001,scale=8760h", "lognormal:median=1ns,p99=8760h",
        "uniform:min=0ns,max=0ns", "constant:8760h", "1ms", "100000000", "1e9", "4294967296",
    ]
    static let keys = [
        "sérvices", "服务", "🚀", "\u{200B}duration", "duration ", "", "a.b[0]", "<<", "?", "-", "services\u{202E}",
        "replicas", "queue", "seeds", "window", "zones", "variants", "set", "calls", "rate", "every", "length",
        "sliding_window_size", "kind",
    ]

    /// One structural mutation of `tree`.
    static func mutate(_ tree: inout Tree, _ rng: inout Rng, anchors: inout Int) {
        let count = tree.count
        let target = rng.below(count)
        switch rng.below(12) {
        case 0:  // delete a key
            tree.update(target) { node in
                guard case .mapping(var pairs) = node, !pairs.isEmpty else { return node }
                pairs.remove(at: rng.below(pairs.count))
                return .mapping(pairs)
            }
        case 1:  // duplicate a key
            tree.update(target) { node in
                guard case .mapping(var pairs) = node, !pairs.isEmpty else { return node }
                pairs.append(pairs[rng.below(pairs.count)])
                return .mapping(pairs)
            }
        case 2:  // swap a node's type
            tree.update(target) { node in
                switch node {
                case .scalar(let text):
                    return rng.below(2) == 0 ? .sequence([.scalar(text)]) : .mapping([(text, .scalar(text))])
                case .sequence(let items):
                    return rng.below(2) == 0 ? (items.first ?? .scalar("x")) : .mapping([("0", .sequence(items))])
                case .mapping(let pairs):
                    return rng.below(2) == 0 ? .sequence(pairs.map(\.value)) : .scalar(pairs.first?.key ?? "x")
                default: return .scalar("x")
                }
            }
        case 3:  // anchor one node and alias it at another (before or after it)
            let name = "a\(anchors)"
            anchors += 1
            let source = tree.node(target)
            if case .anchored = source { return }
            tree.update(target) { .anchored(name, $0) }
            let other = rng.below(tree.count)
            tree.update(other) { node in
                if case .anchored = node { return node }
                return .alias(name)
            }
            _ = source
        case 4:  // an alias chain: each level nine aliases of the one before
            let levels = 2 + rng.below(9)
            var pairs: [(key: String, value: Tree)] = []
            let base = anchors
            anchors += levels
            pairs.append(("l\(base)", .anchored("l\(base)", .sequence(Array(repeating: .scalar("lol"), count: 9)))))
            for level in 1..<levels {
                let name = "l\(base + level)"
                pairs.append(
                    (name, .anchored(name, .sequence(Array(repeating: .alias("l\(base + level - 1)"), count: 9))))
                )
            }
            tree.update(target) { node in
                guard case .mapping(let existing) = node else { return .mapping(pairs) }
                return .mapping(existing + pairs)
            }
        case 5:  // a huge, tiny or strange number
            tree.update(target) { node in
                guard case .scalar = node else { return node }
                return .scalar(rng.pick(numbers))
            }
        case 6:  // deep nesting
            let depth = rng.pick([8, 30, 63, 65, 200, 2_000])
            tree.update(target) { node in
                var wrapped = node
                for _ in 0..<depth { wrapped = rng.below(2) == 0 ? .sequence([wrapped]) : .mapping([("k", wrapped)]) }
                return wrapped
            }
        case 7:  // a very long string, as a value or a key
            let long = String(repeating: rng.pick(["x", "é", "服", "🚀"]), count: rng.pick([129, 10_001, 200_000]))
            tree.update(target) { node in
                if case .mapping(var pairs) = node, !pairs.isEmpty, rng.below(2) == 0 {
                    pairs[rng.below(pairs.count)].key = long
                    return .mapping(pairs)
                }
                return .scalar(long)
            }
        case 8:  // a unicode or look-alike key
            tree.update(target) { node in
                guard case .mapping(var pairs) = node, !pairs.isEmpty else { return node }
                pairs[rng.below(pairs.count)].key = rng.pick(keys)
                return .mapping(pairs)
            }
        case 9:  // splice a subtree from elsewhere
            let donor = tree.node(rng.below(count))
            tree.update(target) { _ in donor }
        case 10:  // a new key with a random value
            tree.update(target) { node in
                guard case .mapping(var pairs) = node else { return node }
                pairs.append((rng.pick(keys), rng.below(2) == 0 ? .scalar(rng.pick(numbers)) : .sequence([])))
                return .mapping(pairs)
            }
        default:  // many copies of a list's item
            tree.update(target) { node in
                guard case .sequence(let items) = node, let first = items.first else { return node }
                return .sequence(Array(repeating: first, count: rng.pick([100, 1_001, 10_000])))
            }
        }
    }

    struct Outcome: Sendable {
        var status: Int32
        var signalled: Bool
        var stdout: String
        var stderr: String
        var timedOut: Bool
    }

    /// Runs the binary with `arguments` under an address-space limit of 4 GiB, a CPU limit and a wall-clock limit
    /// (`timeout -s KILL`); its output goes to files, so that no pipe can fill and block it.
    static func bounded(_ arguments: [String], seconds: Int, scratch: String) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let out = scratch + ".stdout"
        let err = scratch + ".stderr"
        process.arguments =
            [
                "-c",
                "ulimit -v 4194304; ulimit -t \(seconds); exec timeout -s KILL \(seconds * 2) \"$0\" \"$@\" >'\(out)' 2>'\(err)'",
                CLITests.binary,
            ] + arguments
        try process.run()
        process.waitUntilExit()
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: err)
        }
        let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        // timeout(1) exits 137 when it had to kill; a signal inside the child shows as 128 + the signal.
        let status = process.terminationStatus
        return Outcome(
            status: status,
            signalled: process.terminationReason == .uncaughtSignal || status > 128,
            stdout: stdout,
            stderr: stderr,
            timedOut: status == 137
        )
    }

    /// Why `outcome` of validating `file` is not acceptable, or nil.
    static func problem(validating file: String, _ outcome: Outcome) -> String? {
        if outcome.signalled {
            return "killed (status \(outcome.status))\(outcome.timedOut ? " at the time limit" : "")"
        }
        if outcome.stderr.utf8.count > 100_000 { return "\(outcome.stderr.utf8.count) bytes of messages" }
        switch outcome.status {
        case 0:
            return outcome.stdout.contains(": ok") ? nil : "exit 0 without 'ok': \(outcome.stdout.prefix(300))"
        case 64, 65:
            let errorLines = outcome.stderr.split(separator: "\n").filter { $0.contains("error:") }
            if errorLines.isEmpty {
                return "exit \(outcome.status) without an error line: \(outcome.stderr.prefix(300))"
            }
            if outcome.status == 65, let stray = errorLines.first(where: { !$0.hasPrefix(file + ":") }) {
                return "an error not located in the file: \(stray.prefix(300))"
            }
            return nil
        default:
            return "exit \(outcome.status): \(outcome.stderr.prefix(300))"
        }
    }

    @Test("2,100 structural mutations of the bundled scenarios end in 0, 64 or 65 with located messages")
    func structuralMutations() throws {
        let names = [
            "quickstart.yaml", "mm1.yaml", "mmc.yaml", "md1.yaml", "zones-and-health.yaml",
            "linkerd-beyond-round-robin.yaml", "live-slow-replica.yaml",
        ]
        let sources = try names.map { name -> Tree in
            let text = try String(contentsOfFile: CLITests.root + "/scenarios/" + name, encoding: .utf8)
            return Tree(try #require(try Yams.compose(yaml: text)))
        }
        let directory = CLITests.temporaryDirectory("structural")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases = 2_100
        var files: [String] = []
        var rng = Rng(state: 20_261_127)
        for n in 0..<cases {
            var tree = sources[n % sources.count]
            var anchors = 0
            for _ in 0...rng.below(3) { Self.mutate(&tree, &rng, anchors: &anchors) }
            var text = ""
            tree.yaml(into: &text)
            let file = directory + "/case-\(n).yaml"
            try (text + "\n").write(toFile: file, atomically: false, encoding: .utf8)
            files.append(file)
        }
        let mutants = files
        let failures = Mutex<[String]>([])
        let accepted = Mutex<[String]>([])
        let refused = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for index in stride(from: worker, to: mutants.count, by: 2) {
                let file = mutants[index]
                do {
                    let outcome = try Self.bounded(["validate", file], seconds: 20, scratch: file)
                    if let problem = Self.problem(validating: file, outcome) {
                        failures.withLock { $0.append("\(file): \(problem)") }
                    } else if outcome.status == 0 {
                        accepted.withLock { $0.append(file) }
                    } else {
                        refused.add(1, ordering: .relaxed)
                    }
                } catch {
                    failures.withLock { $0.append("\(file): could not start: \(error)") }
                }
            }
        }
        // A sample of the accepted mutants also runs (short, one seed) under the same limits.
        let sample = accepted.withLock { $0 }.sorted().enumerated().filter { $0.offset % 10 == 0 }.map(\.element)
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for index in stride(from: worker, to: sample.count, by: 2) {
                let file = sample[index]
                let out = file + ".out"
                do {
                    let outcome = try Self.bounded(
                        [
                            "run", file, "--duration", "2s", "--seeds", "1", "--jobs", "1", "--quiet", "--out", out,
                            "--max-memory", "1GiB",
                        ],
                        seconds: 60,
                        scratch: out
                    )
                    if outcome.signalled || ![0, 64, 65, 66].contains(outcome.status) {
                        failures.withLock {
                            $0.append("\(file): run: status \(outcome.status) \(outcome.stderr.prefix(300))")
                        }
                    }
                } catch {
                    failures.withLock { $0.append("\(file): run could not start: \(error)") }
                }
            }
        }
        let found = failures.withLock { $0 }
        #expect(found.isEmpty, "\(found.count) failures, first: \(found.prefix(5).joined(separator: "\n"))")
        if !found.isEmpty {
            // Keep the failing mutants for reproduction.
            let keep = NSTemporaryDirectory() + "meshsim-structural-failures"
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            for line in found.prefix(20) {
                let file = String(line.prefix { $0 != ":" })
                try? FileManager.default.copyItem(
                    atPath: file,
                    toPath: keep + "/" + (file as NSString).lastPathComponent
                )
            }
        }
        // Both outcomes occur in numbers: the mutations reach the validator's checks and the model.
        let acceptedCount = accepted.withLock { $0.count }
        #expect(acceptedCount > 100, "accepted \(acceptedCount)")
        #expect(refused.load(ordering: .relaxed) > 1_000, "refused \(refused.load(ordering: .relaxed))")
        #expect(sample.count > 10)
    }
}
