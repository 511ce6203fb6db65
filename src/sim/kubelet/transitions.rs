//! The container lifecycle as one table: for each step the kubelet takes on a
//! container, the Waiting reason it shows (if any) and the Events it records, with the
//! kubelet's exact wording. The pod worker only decides *which* step happened; what
//! that looks like to clients is read from here.
//!
//! | step           | container state                        | events                                                        |
//! |----------------|----------------------------------------|---------------------------------------------------------------|
//! | ImagePresent   | –                                      | Normal Pulled "Container image "x" already present on machine" |
//! | ImagePulled    | –                                      | Normal Pulling, Normal Pulled "Successfully pulled image ..."   |
//! | PullFailed     | Waiting ErrImagePull                   | Normal Pulling, Warning Failed (pull error), Warning Failed "Error: ErrImagePull" |
//! | PullBackOff    | Waiting ImagePullBackOff               | Normal BackOff, Warning Failed "Error: ImagePullBackOff"       |
//! | NeverPull      | Waiting ErrImageNeverPull              | Warning ErrImageNeverPull, Warning Failed                      |
//! | InvalidImage   | Waiting InvalidImageName               | Warning InspectFailed, Warning Failed "Error: InvalidImageName" |
//! | ConfigError    | Waiting CreateContainerConfigError     | Warning Failed "Error: `<why>`"                                  |
//! | CreateError    | Waiting CreateContainerError           | Warning Failed "Error: `<why>`"                                  |
//! | Created        | –                                      | Normal Created "Created container: c"                          |
//! | Started        | Running                                | Normal Started "Started container c"                           |
//! | StartFailed    | Terminated StartError (128)            | Warning Failed "Error: `<why>`"                                  |
//! | CrashBackOff   | Waiting CrashLoopBackOff               | Warning BackOff "Back-off restarting failed container ..."     |
//! | Killing        | –                                      | Normal Killing "Stopping container c"                          |

/// A step of the kubelet's container sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Image treated as present (pull policy IfNotPresent or Never).
    ImagePresent,
    /// Image "pulled" (pull policy Always).
    ImagePulled,
    /// The image matches a pull-failure pattern.
    PullFailed,
    /// A later sync while the pull is backing off.
    PullBackOff,
    /// Pull policy Never and the image is "missing".
    NeverPull,
    /// The image reference does not parse.
    InvalidImage,
    /// Env/config could not be generated (missing Secret or ConfigMap...).
    ConfigError,
    /// The runtime could not create the container (no command...).
    CreateError,
    /// The container was created.
    Created,
    /// Its process started.
    Started,
    /// The process could not be started (executable not found...).
    StartFailed,
    /// Waiting to restart after a failure.
    CrashBackOff,
    /// Being stopped (delete, deadline, eviction).
    Killing,
}

/// Event severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// The text that fills a step's templates.
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    /// Container name.
    pub container: &'a str,
    /// Image as written in the spec.
    pub image: &'a str,
    /// The error text of the failure, when there is one.
    pub error: &'a str,
    /// `pod_namespace(uid)` as the kubelet prints a pod in back-off messages.
    pub pod: &'a str,
    /// The current back-off delay, Go-formatted (`10s`, `1m20s`).
    pub delay: &'a str,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The step.
    pub step: Step,
    /// Waiting reason shown in the container status, if the step leaves it waiting.
    pub waiting: Option<&'static str>,
    /// Template for the waiting message.
    pub waiting_message: Option<&'static str>,
    /// Events recorded: severity, reason, message template.
    pub events: &'static [(Severity, &'static str, &'static str)],
}

use Severity::{Normal, Warning};

/// The table (see the module docs). Templates use `{container}`, `{image}`, `{error}`,
/// `{pod}` and `{delay}`.
pub const TABLE: &[Row] = &[
    Row {
        step: Step::ImagePresent,
        waiting: None,
        waiting_message: None,
        events: &[(Normal, "Pulled", "Container image \"{image}\" already present on machine")],
    },
    Row {
        step: Step::ImagePulled,
        waiting: None,
        waiting_message: None,
        events: &[
            (Normal, "Pulling", "Pulling image \"{image}\""),
            (
                Normal,
                "Pulled",
                "Successfully pulled image \"{image}\" in {delay} ({delay} including waiting). Image size: 0 bytes.",
            ),
        ],
    },
    Row {
        step: Step::PullFailed,
        waiting: Some("ErrImagePull"),
        waiting_message: Some("{error}"),
        events: &[
            (Normal, "Pulling", "Pulling image \"{image}\""),
            (Warning, "Failed", "Failed to pull image \"{image}\": {error}"),
            (Warning, "Failed", "Error: ErrImagePull"),
        ],
    },
    Row {
        step: Step::PullBackOff,
        waiting: Some("ImagePullBackOff"),
        waiting_message: Some("Back-off pulling image \"{image}\""),
        events: &[
            (Normal, "BackOff", "Back-off pulling image \"{image}\""),
            (Warning, "Failed", "Error: ImagePullBackOff"),
        ],
    },
    Row {
        step: Step::NeverPull,
        waiting: Some("ErrImageNeverPull"),
        waiting_message: Some("Container image \"{image}\" is not present with pull policy of Never"),
        events: &[
            (
                Warning,
                "ErrImageNeverPull",
                "Container image \"{image}\" is not present with pull policy of Never",
            ),
            (Warning, "Failed", "Error: ErrImageNeverPull"),
        ],
    },
    Row {
        step: Step::InvalidImage,
        waiting: Some("InvalidImageName"),
        waiting_message: Some("Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": {error}"),
        events: &[
            (
                Warning,
                "InspectFailed",
                "Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": {error}",
            ),
            (Warning, "Failed", "Error: InvalidImageName"),
        ],
    },
    Row {
        step: Step::ConfigError,
        waiting: Some("CreateContainerConfigError"),
        waiting_message: Some("{error}"),
        events: &[(Warning, "Failed", "Error: {error}")],
    },
    Row {
        step: Step::CreateError,
        waiting: Some("CreateContainerError"),
        waiting_message: Some("{error}"),
        events: &[(Warning, "Failed", "Error: {error}")],
    },
    Row {
        step: Step::Created,
        waiting: None,
        waiting_message: None,
        events: &[(Normal, "Created", "Created container: {container}")],
    },
    Row {
        step: Step::Started,
        waiting: None,
        waiting_message: None,
        events: &[(Normal, "Started", "Started container {container}")],
    },
    Row {
        step: Step::StartFailed,
        waiting: None,
        waiting_message: None,
        events: &[(Warning, "Failed", "Error: {error}")],
    },
    Row {
        step: Step::CrashBackOff,
        waiting: Some("CrashLoopBackOff"),
        waiting_message: Some("back-off {delay} restarting failed container={container} pod={pod}"),
        events: &[(Warning, "BackOff", "Back-off restarting failed container {container} in pod {pod}")],
    },
    Row {
        step: Step::Killing,
        waiting: None,
        waiting_message: None,
        events: &[(Normal, "Killing", "Stopping container {container}")],
    },
];

/// The row of `step`.
pub fn row(step: Step) -> &'static Row {
    TABLE
        .iter()
        .find(|r| r.step == step)
        .expect("every Step variant has a row in TABLE (checked by a unit test)")
}

/// Fills a template.
pub fn render(template: &str, v: &Vars<'_>) -> String {
    template
        .replace("{container}", v.container)
        .replace("{image}", v.image)
        .replace("{error}", v.error)
        .replace("{pod}", v.pod)
        .replace("{delay}", v.delay)
}

/// A duration as Go's `time.Duration.String()` prints whole seconds (`10s`, `5m0s`).
pub fn go_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return if ms == 0 {
            format!("{}µs", d.as_micros())
        } else {
            format!("{ms}ms")
        };
    }
    let secs = d.as_secs_f64();
    let whole = d.as_secs();
    let (h, m) = (whole / 3600, (whole % 3600) / 60);
    let s = secs - (h * 3600 + m * 60) as f64;
    let s = if (s - s.round()).abs() < 1e-9 {
        format!("{}s", s.round() as u64)
    } else {
        format!("{}s", format!("{s:.3}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_step_has_one_row() {
        let steps = [
            Step::ImagePresent,
            Step::ImagePulled,
            Step::PullFailed,
            Step::PullBackOff,
            Step::NeverPull,
            Step::InvalidImage,
            Step::ConfigError,
            Step::CreateError,
            Step::Created,
            Step::Started,
            Step::StartFailed,
            Step::CrashBackOff,
            Step::Killing,
        ];
        for s in steps {
            assert_eq!(TABLE.iter().filter(|r| r.step == s).count(), 1, "{s:?}");
        }
        assert_eq!(TABLE.len(), steps.len());
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_millis(1462)), "1.462s");
        assert_eq!(go_duration(Duration::from_millis(806)), "806ms");
    }
}
