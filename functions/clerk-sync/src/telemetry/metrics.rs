//! Metrics in CloudWatch Embedded Metric Format (EMF): one JSON document per invocation, written
//! as a line on stdout, which CloudWatch Logs turns into metrics. No network call, nothing to
//! flush on shutdown.
//!
//! Every metric is reported under two dimension sets, `[Function]` (the function name, unique per
//! stack) and `[Function, Version]` (the executing version, which the deployment canary's alarms
//! watch). [`Document::by`] adds a bounded breakdown (a route, an error code): never a user id.
//!
//! A small module rather than `metrics_cloudwatch_embedded`, the maintained EMF backend of the
//! `metrics` facade: that crate writes one document per label set, each under a single dimension
//! set, from one process-wide recorder. We need one document per invocation with each metric
//! under both sets above, and the local stack runs all three functions in one process, where a
//! process-wide recorder would mix their metrics.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ClerkSync";
/// Reported, as 1, by the first invocation of an execution environment.
pub const COLD_START: &str = "ColdStart";
/// EMF's limit of values of one metric in one document; more go in further documents.
const MAX_VALUES: usize = 100;

/// Where documents go: one JSON line each.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Writes each document as a line on stdout, as Lambda's log capture expects.
pub fn stdout() -> Sink {
    Arc::new(|line| {
        // A closed stdout loses the metrics, never the invocation.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    })
}

/// One function's metrics: its name, its version, whether it has served an invocation yet.
pub struct Metrics {
    function: String,
    version: String,
    cold: AtomicBool,
    sink: Sink,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("function", &self.function)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(function: impl Into<String>, version: impl Into<String>, sink: Sink) -> Self {
        Self {
            function: function.into(),
            version: version.into(),
            cold: AtomicBool::new(true),
            sink,
        }
    }

    /// As deployed: the name and version Lambda gives the function (`AWS_LAMBDA_FUNCTION_NAME`,
    /// `AWS_LAMBDA_FUNCTION_VERSION`; `name` and `$LATEST` outside Lambda), on stdout.
    pub fn lambda(name: &str) -> Self {
        let env = |key| std::env::var(key).ok().filter(|v| !v.is_empty());
        Self::new(
            env("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| name.to_owned()),
            env("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|| "$LATEST".to_owned()),
            stdout(),
        )
    }

    /// Documents are built and dropped: for callers that do not look at metrics.
    pub fn discard(name: &str) -> Self {
        Self::new(name, "$LATEST", Arc::new(|_| {}))
    }

    /// The document of one invocation; the first one of this environment reports a cold start.
    pub fn document(&self) -> Document<'_> {
        let mut document = Document {
            metrics: self,
            values: BTreeMap::new(),
            splits: Vec::new(),
            dimensions: BTreeMap::new(),
            properties: BTreeMap::new(),
        };
        if self.cold.swap(false, Ordering::Relaxed) {
            document.count(COLD_START, 1);
        }
        document
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

#[derive(Debug)]
struct Metric {
    unit: Unit,
    values: Vec<f64>,
    /// Reported under `[Function]` and `[Function, Version]`; otherwise only by its breakdown.
    rollup: bool,
}

/// Metrics reported by extra dimensions (`[Function, <keys>…]`).
#[derive(Debug)]
struct Split {
    keys: Vec<&'static str>,
    metrics: Vec<&'static str>,
}

/// What one invocation measured. Nothing is written until [`Document::emit`].
#[derive(Debug)]
pub struct Document<'m> {
    metrics: &'m Metrics,
    values: BTreeMap<&'static str, Metric>,
    splits: Vec<Split>,
    dimensions: BTreeMap<&'static str, String>,
    properties: BTreeMap<&'static str, String>,
}

impl Document<'_> {
    /// Adds `n` to a count.
    pub fn count(&mut self, name: &'static str, n: u64) -> &mut Self {
        self.add(name, Unit::Count, true, n as f64)
    }

    /// Records one duration, in milliseconds (a metric may hold many in one document).
    pub fn millis(&mut self, name: &'static str, ms: f64) -> &mut Self {
        self.add(name, Unit::Milliseconds, true, ms)
    }

    /// Adds `n` to a count reported only by `dimensions` (e.g. refusals by reason).
    pub fn count_by(
        &mut self,
        name: &'static str,
        n: u64,
        dimensions: &[(&'static str, &str)],
    ) -> &mut Self {
        self.add(name, Unit::Count, false, n as f64);
        self.by(dimensions, &[name])
    }

    /// Also reports `names` by `dimensions` (bounded values only: a route, a status, a code).
    /// A dimension has one value per document; a second, different value is refused.
    pub fn by(&mut self, dimensions: &[(&'static str, &str)], names: &[&'static str]) -> &mut Self {
        for (key, value) in dimensions {
            match self.dimensions.get(key) {
                Some(set) if set != value => {
                    tracing::warn!(
                        dimension = key,
                        "metric dimension set twice; kept the first"
                    );
                    return self;
                }
                Some(_) => {}
                None => {
                    self.dimensions.insert(key, (*value).to_owned());
                }
            }
        }
        let keys: Vec<_> = dimensions.iter().map(|(k, _)| *k).collect();
        match self.splits.iter_mut().find(|s| s.keys == keys) {
            Some(split) => split.metrics.extend(names),
            None => self.splits.push(Split {
                keys,
                metrics: names.to_vec(),
            }),
        }
        self
    }

    /// A searchable value that is not a dimension (a request id): no metric is made of it.
    pub fn property(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.properties.insert(key, value.into());
        self
    }

    fn add(&mut self, name: &'static str, unit: Unit, rollup: bool, value: f64) -> &mut Self {
        let metric = self.values.entry(name).or_insert(Metric {
            unit,
            values: Vec::new(),
            rollup,
        });
        metric.rollup |= rollup;
        match (unit, metric.values.first_mut()) {
            (Unit::Count, Some(sum)) => *sum += value,
            _ => metric.values.push(value),
        }
        self
    }

    /// Writes the document (more than one when a metric holds over 100 values).
    pub fn emit(self) {
        for line in self.lines() {
            (self.metrics.sink)(&line);
        }
    }

    /// The EMF documents, as JSON lines.
    pub fn lines(&self) -> Vec<String> {
        let longest = self.values.values().map(|m| m.values.len()).max();
        let chunks = longest.unwrap_or(0).div_ceil(MAX_VALUES).max(1);
        let timestamp = crate::clock::now_ms();
        (0..chunks)
            .map(|chunk| self.chunk(chunk, timestamp).to_string())
            .collect()
    }

    fn chunk(&self, chunk: usize, timestamp: i64) -> Value {
        let present = |name: &&'static str| {
            (self.values.get(name)).is_some_and(|m| !chunk_of(&m.values, chunk).is_empty())
        };
        let definitions = |names: &[&'static str]| -> Vec<Value> {
            (names.iter())
                .map(|name| json!({"Name": name, "Unit": self.values[name].unit.as_str()}))
                .collect()
        };
        let mut directives = Vec::new();
        let rollup: Vec<_> = (self.values.iter())
            .filter(|(name, m)| m.rollup && present(name))
            .map(|(name, _)| *name)
            .collect();
        if !rollup.is_empty() {
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"], ["Function", "Version"]],
                "Metrics": definitions(&rollup),
            }));
        }
        for split in &self.splits {
            let mut names: Vec<_> = split.metrics.iter().copied().filter(present).collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                continue;
            }
            let mut dimensions = vec!["Function"];
            dimensions.extend(&split.keys);
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions(&names),
            }));
        }
        let mut document = Map::new();
        document.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}),
        );
        document.insert("Function".into(), self.metrics.function.clone().into());
        document.insert("Version".into(), self.metrics.version.clone().into());
        for (key, value) in self.dimensions.iter().chain(&self.properties) {
            document.insert((*key).into(), value.clone().into());
        }
        for (name, metric) in &self.values {
            match chunk_of(&metric.values, chunk) {
                [] => {}
                [one] => {
                    document.insert((*name).into(), json!(one));
                }
                many => {
                    document.insert((*name).into(), json!(many));
                }
            }
        }
        Value::Object(document)
    }
}

/// The `chunk`th run of at most [`MAX_VALUES`] values.
fn chunk_of(values: &[f64], chunk: usize) -> &[f64] {
    let start = (chunk * MAX_VALUES).min(values.len());
    let end = ((chunk + 1) * MAX_VALUES).min(values.len());
    &values[start..end]
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn collecting() -> (Metrics, Arc<Mutex<Vec<Value>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let metrics = Metrics::new(
            "stack-webhook",
            "7",
            Arc::new(move |line: &str| {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(line).unwrap())
            }),
        );
        (metrics, lines)
    }

    #[test]
    fn a_document_reports_each_metric_under_function_and_function_and_version() {
        let (metrics, lines) = collecting();
        let mut doc = metrics.document();
        doc.count("Requests", 1)
            .count("Queued", 1)
            .millis("Latency", 3.5);
        doc.property("requestId", "r-1");
        doc.emit();
        let docs = lines.lock().unwrap();
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ClerkSync");
        assert_eq!(
            directive["Dimensions"],
            json!([["Function"], ["Function", "Version"]])
        );
        let names: Vec<_> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("ColdStart", "Count"),
                ("Latency", "Milliseconds"),
                ("Queued", "Count"),
                ("Requests", "Count")
            ]
        );
        assert_eq!(doc["Function"], "stack-webhook");
        assert_eq!(doc["Version"], "7");
        assert_eq!(doc["Requests"], 1.0);
        assert_eq!(doc["Latency"], 3.5);
        assert_eq!(doc["requestId"], "r-1");
        assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn only_the_first_document_of_an_environment_reports_a_cold_start() {
        let (metrics, lines) = collecting();
        metrics.document().emit();
        let mut second = metrics.document();
        second.count("Requests", 1);
        second.emit();
        let docs = lines.lock().unwrap();
        assert_eq!(docs[0]["ColdStart"], 1.0);
        assert!(docs[1].get("ColdStart").is_none());
    }

    #[test]
    fn counts_add_up_and_durations_keep_every_value() {
        let (metrics, _) = collecting();
        let mut doc = metrics.document();
        doc.count("Messages", 2).count("Messages", 3);
        doc.millis("SyncLag", 10.0).millis("SyncLag", 20.0);
        let line: Value = serde_json::from_str(&doc.lines()[0]).unwrap();
        assert_eq!(line["Messages"], 5.0);
        assert_eq!(line["SyncLag"], json!([10.0, 20.0]));
    }

    #[test]
    fn a_breakdown_is_its_own_directive_and_a_count_by_is_not_rolled_up() {
        let (metrics, _) = collecting();
        let mut doc = metrics.document();
        doc.count("Requests", 1)
            .by(&[("Route", "me"), ("Status", "401")], &["Requests"])
            .count_by("TokenRefusals", 1, &[("Reason", "expired")]);
        let line: Value = serde_json::from_str(&doc.lines()[0]).unwrap();
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 3);
        let rolled: Vec<_> = directives[0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].clone())
            .collect();
        assert!(!rolled.contains(&json!("TokenRefusals")));
        assert_eq!(
            directives[1]["Dimensions"],
            json!([["Function", "Route", "Status"]])
        );
        assert_eq!(directives[2]["Dimensions"], json!([["Function", "Reason"]]));
        assert_eq!(directives[2]["Metrics"][0]["Name"], "TokenRefusals");
        assert_eq!(line["Route"], "me");
        assert_eq!(line["Status"], "401");
        assert_eq!(line["Reason"], "expired");
    }

    #[test]
    fn a_dimension_keeps_its_first_value() {
        let (metrics, _) = collecting();
        let mut doc = metrics.document();
        doc.count_by("LazySyncs", 1, &[("Outcome", "applied")])
            .count_by("Other", 1, &[("Outcome", "failed")]);
        let line: Value = serde_json::from_str(&doc.lines()[0]).unwrap();
        assert_eq!(line["Outcome"], "applied");
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(directives.iter().all(|d| {
            d["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["Name"] != "Other")
        }));
    }

    #[test]
    fn more_than_a_hundred_values_spill_into_further_documents_without_repeating_counts() {
        let (metrics, lines) = collecting();
        let mut doc = metrics.document();
        doc.count("Messages", 250);
        for i in 0..250 {
            doc.millis("SyncLag", f64::from(i));
        }
        doc.emit();
        let docs = lines.lock().unwrap();
        assert_eq!(docs.len(), 3);
        let lags: Vec<usize> = docs
            .iter()
            .map(|d| d["SyncLag"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(lags, [100, 100, 50]);
        assert_eq!(docs[0]["Messages"], 250.0);
        assert!(docs[1].get("Messages").is_none() && docs[2].get("Messages").is_none());
        assert_eq!(docs[2]["SyncLag"][49], 249.0);
    }
}
