//===----------------------------------------------------------------------===//
// meshsim — Scenario: variants and parameter sweeps
//===----------------------------------------------------------------------===//

import Foundation
import SimCore
import Spec

/// One change a variant makes to the file: the node at `key` (a dotted path) becomes `value`.
struct VariantSetting {
    /// The dotted path, as written (`services.api.calls[0].balancer`).
    var key: String
    /// The new value.
    var value: YAMLTree
    /// Where the change was written, for messages.
    var mark: SourceMark?
    /// The key path of the change in the file, for messages (`variants[1].set.…` or `sweep.rate`).
    var origin: String
}

/// A variant before it is decoded: its name, description and the changes it makes to the base file.
struct VariantDraft {
    var name: String
    var description: String
    /// The explicit variant it comes from (`base` when the file lists none).
    var base: String
    /// The sweep point's label on each axis, in axis order (empty without a sweep).
    var axisLabels: [String]
    var settings: [VariantSetting]
    /// What a problem only this variant has is reported under: `variants[1] (b)` or `sweep point 'rate=100'`.
    var errorPrefix: String
}

/// One axis of a `sweep`: a name, the paths it sets and its points.
struct SweepAxis {
    var name: String
    var paths: [String]
    var points: [(label: String, value: YAMLTree)]
    var mark: SourceMark?
}

extension ScenarioDecoder {
    /// Top-level keys a variant or a sweep may not change: they describe the run, not the mesh.
    static let runKeys = ["variants", "sweep", "seeds", "seed", "name", "description", "report"]

    /// The most points one sweep axis may have.
    static let maxAxisPoints = 1_000

    /// Decodes `variants` and `sweep` into the scenario's variants, each the base file with its changes applied.
    ///
    /// Without either, the scenario has one variant, `base`. A sweep crosses every explicit variant (or `base`) with
    /// every point of its grid; the variant's own changes are applied first, then the sweep's, axis by axis.
    mutating func variants(_ tree: YAMLTree, _ top: Fields, name: String, base: MeshSpec) -> (
        variants: [Scenario.Variant], axes: [String]
    ) {
        var drafts = explicitVariants(top)
        let explicit = !drafts.isEmpty
        if !explicit {
            drafts = [
                VariantDraft(
                    name: "base",
                    description: "",
                    base: "base",
                    axisLabels: [],
                    settings: [],
                    errorPrefix: "base"
                )
            ]
        }
        let axes = sweepAxes(top["sweep"])
        if !axes.isEmpty {
            drafts = expand(drafts, axes: axes, explicit: explicit, node: top["sweep"])
        }
        if !explicit && axes.isEmpty {
            return ([Scenario.Variant(name: "base", description: "", spec: base)], [])
        }
        // Problems already reported for the base file are not repeated for each variant; a problem that the points
        // of a sweep share is reported once per explicit variant, under the first point that has it.
        func key(_ e: ScenarioError, _ base: String = "") -> String {
            "\(base)\n\(e.line ?? 0):\(e.column ?? 0):\(e.keyPath):\(e.message)"
        }
        let baseProblems = Set(reader.errors.map { key($0) })
        var reported: Set<String> = []
        var variants: [Scenario.Variant] = []
        for draft in drafts {
            var patched = tree
            for setting in draft.settings {
                do {
                    try patched.set(path: setting.key, to: setting.value)
                } catch {
                    let before = reader.errors.count
                    reader.fail(
                        .danglingReference,
                        setting.value,
                        setting.origin,
                        error.message,
                        suggestion: error.suggestion,
                        mark: setting.mark
                    )
                    if !reported.insert(key(reader.errors[before], draft.base)).inserted { reader.errors.removeLast() }
                }
            }
            let errorsBefore = reader.errors.count
            guard let patchedTop = reader.fields(patched, "", known: Self.topKeys),
                let spec = mesh(patchedTop, name: name)
            else { continue }
            // Problems that only the variant's changes create are reported under the variant.
            let problems = Array(reader.errors[errorsBefore...])
            reader.errors.removeSubrange(errorsBefore...)
            for var problem in problems
            where !baseProblems.contains(key(problem)) && reported.insert(key(problem, draft.base)).inserted {
                problem.keyPath = draft.errorPrefix + ": " + problem.keyPath
                reader.errors.append(problem)
            }
            variants.append(Scenario.Variant(name: draft.name, description: draft.description, spec: spec))
            variants[variants.count - 1].base = draft.base
            variants[variants.count - 1].axisLabels = draft.axisLabels
        }
        return (variants, axes.map(\.name))
    }

    /// The `variants` list: names, descriptions and `set` changes, checked for duplicates and run keys.
    mutating func explicitVariants(_ top: Fields) -> [VariantDraft] {
        let nodes = reader.list(top["variants"], "variants", atMost: Self.maxVariants, of: "variants")
        var drafts: [VariantDraft] = []
        var names: Set<String> = []
        for (i, node) in nodes.enumerated() {
            let path = "variants[\(i)]"
            guard let f = reader.fields(node, path, known: ["name", "description", "set"]) else { continue }
            guard let name = f["name"].flatMap({ reader.string($0, path + ".name", maxLength: Self.maxNameLength) })
            else {
                if f["name"] == nil { reader.fail(.missingField, node, path + ".name", "a variant needs a name") }
                continue
            }
            if !names.insert(name).inserted {
                reader.fail(.duplicate, f["name"], path + ".name", "variant '\(name)' is defined twice")
                continue
            }
            var settings: [VariantSetting] = []
            for pair in reader.entries(f["set"], path + ".set") {
                let origin = path + ".set." + pair.key
                if changesRun(pair.key, value: pair.value, origin: origin, mark: pair.mark) { continue }
                settings.append(VariantSetting(key: pair.key, value: pair.value, mark: pair.mark, origin: origin))
            }
            drafts.append(
                VariantDraft(
                    name: name,
                    description: f["description"].flatMap { reader.string($0, path + ".description") } ?? "",
                    base: name,
                    axisLabels: [],
                    settings: settings,
                    errorPrefix: "\(path) (\(name))"
                )
            )
        }
        return drafts
    }

    /// Reports a change to one of ``runKeys`` (true when it is one).
    mutating func changesRun(_ key: String, value: YAMLTree, origin: String, mark: SourceMark?) -> Bool {
        let root = String(key.prefix { $0 != "." && $0 != "[" })
        guard Self.runKeys.contains(root) else { return false }
        reader.fail(.outOfRange, value, origin, "a variant cannot change '\(key)'", mark: mark)
        return true
    }

    // MARK: - Sweeps

    /// The axes of a `sweep` block, in file order; empty when there is none or it is unusable.
    mutating func sweepAxes(_ node: YAMLTree?) -> [SweepAxis] {
        var axes: [SweepAxis] = []
        for entry in reader.entries(node, "sweep") {
            let path = "sweep." + entry.key
            guard !entry.key.isEmpty, !entry.key.contains(","), !entry.key.contains("=") else {
                reader.fail(
                    .outOfRange,
                    entry.value,
                    path,
                    "an axis name goes into variant names as name=value: it may not be empty or contain ',' or '='",
                    mark: entry.mark
                )
                continue
            }
            guard
                let f = reader.fields(
                    entry.value,
                    path,
                    known: ["path", "values", "from", "to", "step", "count", "scale"]
                )
            else { continue }
            let paths = axisPaths(f)
            let points = axisPoints(f)
            guard let paths, let points else { continue }
            if points.count > Self.maxAxisPoints {
                reader.fail(
                    .tooLarge,
                    entry.value,
                    path,
                    "\(points.count) points; an axis may have at most \(Self.maxAxisPoints)"
                )
                continue
            }
            axes.append(SweepAxis(name: entry.key, paths: paths, points: points, mark: entry.mark))
        }
        if axes.isEmpty, let node, !node.isNull, reader.errors.isEmpty {
            reader.fail(.missingField, node, "sweep", "a sweep needs at least one axis (name: {path: …, values: […]})")
        }
        return axes
    }

    /// The dotted paths an axis sets: `path` as text or a list of texts.
    mutating func axisPaths(_ f: Fields) -> [String]? {
        guard let node = f["path"] else {
            reader.fail(
                .missingField,
                f.node,
                f.path("path"),
                "an axis needs the 'path' it sets (e.g. clients.users.rate)"
            )
            return nil
        }
        let nodes: [YAMLTree]
        if case .sequence(let items, _) = node { nodes = items } else { nodes = [node] }
        var paths: [String] = []
        for (i, item) in nodes.enumerated() {
            let itemPath = nodes.count == 1 && !(node.isSequence) ? f.path("path") : f.path("path") + "[\(i)]"
            guard let text = reader.string(item, itemPath) else { return nil }
            if changesRun(text, value: item, origin: itemPath, mark: item.mark) { return nil }
            paths.append(text)
        }
        if paths.isEmpty {
            reader.fail(.missingField, node, f.path("path"), "an axis needs at least one path")
            return nil
        }
        return paths
    }

    /// An axis's points: a `values` list or mapping, or a range `from`/`to` with `step` or `count`.
    mutating func axisPoints(_ f: Fields) -> [(label: String, value: YAMLTree)]? {
        let rangeKeys = ["from", "to", "step", "count", "scale"].filter { f[$0] != nil }
        if let values = f["values"] {
            if let extra = rangeKeys.first {
                reader.fail(.outOfRange, f[extra], f.path(extra), "give either 'values' or a range, not both")
                return nil
            }
            return listedPoints(values, f.path("values"))
        }
        guard f["from"] != nil, f["to"] != nil else {
            reader.fail(
                .missingField,
                f.node,
                f.path,
                "an axis needs 'values' (a list, or a mapping of label: value) or a range: 'from', 'to' and 'step' "
                    + "or 'count'"
            )
            return nil
        }
        return rangePoints(f)
    }

    /// The points of a `values` list (labelled by their text) or mapping (labelled by their keys).
    mutating func listedPoints(_ node: YAMLTree, _ path: String) -> [(label: String, value: YAMLTree)]? {
        var points: [(label: String, value: YAMLTree)] = []
        switch node {
        case .sequence(let items, _):
            for (i, item) in items.enumerated() {
                guard case .scalar(let text, _, _) = item, !item.isNull else {
                    reader.fail(
                        .wrongType,
                        item,
                        path + "[\(i)]",
                        "a listed value must be a scalar, found \(item.kindName); to sweep over mappings or lists, "
                            + "name each one: values: {label: value, …}"
                    )
                    return nil
                }
                points.append((text, item))
            }
        case .mapping:
            for entry in reader.entries(node, path) { points.append((entry.key, entry.value)) }
        default:
            reader.fail(
                .wrongType,
                node,
                path,
                "expected a list of values or a mapping of label: value, found \(node.kindName)"
            )
            return nil
        }
        if points.isEmpty {
            reader.fail(.missingField, node, path, "an axis needs at least one value")
            return nil
        }
        var seen: Set<String> = []
        for point in points {
            guard isValidLabel(point.label) else {
                reader.fail(
                    .outOfRange,
                    point.value,
                    path,
                    "label '\(point.label)' goes into variant names: it may not be empty or contain ',' or a line break"
                )
                return nil
            }
            if !seen.insert(point.label).inserted {
                reader.fail(.duplicate, point.value, path, "the value '\(point.label)' is listed twice")
                return nil
            }
        }
        return points
    }

    /// Whether `label` can stand in a variant name (`axis=label,…`).
    func isValidLabel(_ label: String) -> Bool {
        !label.isEmpty && !label.contains(",") && !label.contains("\n") && !label.contains("\r")
    }

    /// The points of a range: numbers or durations from `from` to `to` (both included when the steps land on it),
    /// by `step`, or `count` points spaced evenly (`scale: linear`) or by a constant ratio (`scale: log`).
    mutating func rangePoints(_ f: Fields) -> [(label: String, value: YAMLTree)]? {
        guard let fromNode = f["from"], let toNode = f["to"] else { return nil }
        if f["step"] != nil && f["count"] != nil {
            reader.fail(.outOfRange, f["count"], f.path("count"), "give either 'step' or 'count', not both")
            return nil
        }
        if f["step"] == nil && f["count"] == nil {
            reader.fail(.missingField, f.node, f.path, "a range needs 'step' or 'count'")
            return nil
        }
        let scale = f["scale"].map { reader.choice($0, f.path("scale"), choices: ["linear", "log"]) } ?? "linear"
        guard let scale else { return nil }
        if scale == "log" && f["step"] != nil {
            reader.fail(.outOfRange, f["scale"], f.path("scale"), "scale: log goes with 'count', not 'step'")
            return nil
        }
        let count =
            f["count"].map { reader.int($0, f.path("count"), default: 0, range: 2...Self.maxAxisPoints) } ?? 0
        if f["count"] != nil && count == 0 { return nil }
        let mark = fromNode.mark
        func scalar(_ text: String) -> YAMLTree { .scalar(text, plain: true, mark) }

        // Durations: all three with units, stepped in whole nanoseconds.
        let texts = [fromNode, toNode, f["step"]].compactMap { node -> String? in
            if case .scalar(let text, _, _)? = node { return text } else { return nil }
        }
        let durations = texts.map { try? SimDuration(parsing: $0) }
        if texts.allSatisfy({ $0.contains(where: \.isLetter) && $0 != "inf" && $0 != "nan" }),
            !durations.contains(where: { $0 == nil })
        {
            let from = durations[0]!.nanoseconds
            let to = durations[1]!.nanoseconds
            var values: [Int64] = []
            if let step = f["step"].map({ _ in durations[2]!.nanoseconds }) {
                guard step > 0 else {
                    reader.fail(.outOfRange, f["step"], f.path("step"), "a duration step must be above 0")
                    return nil
                }
                let n = (to >= from ? (to - from) / step : (from - to) / step) + 1
                guard n <= Int64(Self.maxAxisPoints) else {
                    return tooMany(Int(min(n, Int64(Int.max))), f)
                }
                values = (0..<n).map { to >= from ? from + $0 * step : from - $0 * step }
            } else if scale == "log" {
                guard from > 0, to > 0 else {
                    reader.fail(.outOfRange, fromNode, f.path("from"), "scale: log needs 'from' and 'to' above 0")
                    return nil
                }
                values = (0..<count).map { i in
                    let ratio = Double(i) / Double(count - 1)
                    return Int64((Double(from) * pow(Double(to) / Double(from), ratio)).rounded())
                }
            } else {
                values = (0..<count).map { i in
                    from + Int64((Double(to - from) * Double(i) / Double(count - 1)).rounded())
                }
            }
            let labels = values.map { SimDuration(nanoseconds: $0).formatted }
            return distinct(labels.map { ($0, scalar($0)) }, f)
        }

        // Numbers.
        let fromValue = reader.number(fromNode, f.path("from"), default: .nan, range: -1e300...1e300)
        let toValue = reader.number(toNode, f.path("to"), default: .nan, range: -1e300...1e300)
        guard fromValue.isFinite, toValue.isFinite else { return nil }
        var values: [Double] = []
        if let stepNode = f["step"] {
            let step = reader.number(stepNode, f.path("step"), default: .nan, range: -1e300...1e300)
            guard step.isFinite else { return nil }
            guard step != 0, (toValue - fromValue) * step >= 0 else {
                reader.fail(
                    .outOfRange,
                    stepNode,
                    f.path("step"),
                    step == 0 ? "a step of 0 never reaches 'to'" : "a step of \(stepNode.text) goes away from 'to'"
                )
                return nil
            }
            // The last point is 'to' when the steps land on it (within rounding), never past it.
            let steps = ((toValue - fromValue) / step * (1 + 1e-12)).rounded(.down)
            guard steps < Double(Self.maxAxisPoints) else { return tooMany(Int(min(steps + 1, 1e15)), f) }
            values = (0...Int(steps)).map { fromValue + Double($0) * step }
        } else if scale == "log" {
            guard fromValue > 0, toValue > 0 else {
                reader.fail(.outOfRange, fromNode, f.path("from"), "scale: log needs 'from' and 'to' above 0")
                return nil
            }
            values = (0..<count).map { fromValue * pow(toValue / fromValue, Double($0) / Double(count - 1)) }
        } else {
            values = (0..<count).map { fromValue + (toValue - fromValue) * Double($0) / Double(count - 1) }
        }
        let labels = values.map(Self.label(of:))
        return distinct(labels.map { ($0, scalar($0)) }, f)
    }

    /// A number written with at most 12 significant digits (so 0.1 + 0.2 reads 0.3) and no exponent below 10¹².
    static func label(of value: Double) -> String {
        var text = String(format: "%.12g", value)
        if text == "-0" { text = "0" }
        return text
    }

    /// Refuses a range with more than ``maxAxisPoints`` points.
    mutating func tooMany(_ n: Int, _ f: Fields) -> [(label: String, value: YAMLTree)]? {
        reader.fail(.tooLarge, f.node, f.path, "\(n) points; an axis may have at most \(Self.maxAxisPoints)")
        return nil
    }

    /// Refuses a range whose points round to the same label (a step finer than the labels can tell apart).
    mutating func distinct(
        _ points: [(label: String, value: YAMLTree)],
        _ f: Fields
    ) -> [(label: String, value: YAMLTree)]? {
        var seen: Set<String> = []
        for point in points where !seen.insert(point.label).inserted {
            reader.fail(
                .outOfRange,
                f.node,
                f.path,
                "two points of the range are both \(point.label): use a coarser step or fewer points"
            )
            return nil
        }
        return points
    }

    /// Every draft crossed with every point of the sweep's grid, the first axis varying slowest.
    mutating func expand(
        _ drafts: [VariantDraft],
        axes: [SweepAxis],
        explicit: Bool,
        node: YAMLTree?
    ) -> [VariantDraft] {
        let total = axes.reduce(Double(drafts.count)) { $0 * Double($1.points.count) }
        guard total <= Double(Self.maxVariants) else {
            let sizes = axes.map { "\($0.points.count)" }.joined(separator: " × ")
            reader.fail(
                .tooLarge,
                node,
                "sweep",
                "\(explicit ? "\(drafts.count) variants × " : "")\(sizes) points make \(Int(min(total, 1e15))) "
                    + "variants; a scenario may have at most \(Self.maxVariants)"
            )
            return []
        }
        var result: [VariantDraft] = []
        var names: Set<String> = Set(drafts.map(\.name))
        var reportedLength = false
        for draft in drafts {
            var grid: [[Int]] = [[]]
            for axis in axes { grid = grid.flatMap { prefix in axis.points.indices.map { prefix + [$0] } } }
            for point in grid {
                var expanded = draft
                var parts: [String] = []
                var words: [String] = []
                for (axis, index) in zip(axes, point) {
                    let (label, value) = axis.points[index]
                    parts.append("\(axis.name)=\(label)")
                    words.append("\(axis.name) \(label)")
                    for path in axis.paths {
                        expanded.settings.append(
                            VariantSetting(key: path, value: value, mark: value.mark, origin: "sweep.\(axis.name)")
                        )
                    }
                    expanded.axisLabels.append(label)
                }
                expanded.name = (explicit ? [draft.name] + parts : parts).joined(separator: ",")
                expanded.errorPrefix = "sweep point '\(expanded.name)'"
                let sweepWords = words.joined(separator: ", ")
                expanded.description = draft.description.isEmpty ? sweepWords : draft.description + "; " + sweepWords
                guard expanded.name.utf8.count <= Self.maxNameLength else {
                    if !reportedLength {
                        reportedLength = true
                        reader.fail(
                            .tooLarge,
                            node,
                            "sweep",
                            "the variant name '\(expanded.name)' is longer than \(Self.maxNameLength) bytes: use "
                                + "shorter axis names or labels"
                        )
                    }
                    continue
                }
                if explicit, !names.insert(expanded.name).inserted {
                    reader.fail(.duplicate, node, "sweep", "the sweep makes a variant named '\(expanded.name)' twice")
                    continue
                }
                result.append(expanded)
            }
        }
        return result
    }
}

extension YAMLTree {
    /// Whether the node is a list.
    var isSequence: Bool {
        if case .sequence = self { return true }
        return false
    }

    /// A scalar's text, or a word for what the node is.
    var text: String {
        if case .scalar(let text, _, _) = self { return text }
        return kindName
    }
}
