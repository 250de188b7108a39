//! The README's *Try it locally* walkthrough, read from the README itself, so the banner that
//! `make local` prints, the README and the test that runs it (`tests/walkthrough.rs`) never
//! drift apart.

/// The README, as built into the binary.
const README: &str = include_str!("../../../README.md");
/// Marks the walkthrough's code block in the README.
const MARKER: &str = "<!-- walkthrough -->";

/// One command of the walkthrough, and what its comment says it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The line as the README shows it (command and comment).
    pub line: &'static str,
    /// The command to type.
    pub command: &'static str,
    /// The fragments its output contains: the `quoted` ones after the comment's last ` -> `.
    pub shows: Vec<&'static str>,
}

/// The walkthrough's steps, in order.
pub fn steps() -> Vec<Step> {
    parse(README)
}

fn parse(readme: &'static str) -> Vec<Step> {
    let Some((_, after)) = readme.split_once(MARKER) else {
        return Vec::new();
    };
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .unwrap_or_default();
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (command, comment) = line.split_once(" #").unwrap_or((line, ""));
            let shown = comment.rsplit_once(" -> ").map_or("", |(_, s)| s);
            Step {
                line,
                command: command.trim(),
                shows: shown.split('`').skip(1).step_by(2).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_has_a_walkthrough_whose_every_step_says_what_it_shows() {
        let steps = steps();
        assert!(steps.len() >= 10, "{steps:?}");
        for step in &steps {
            assert!(!step.command.is_empty(), "{step:?}");
            assert!(
                !step.shows.is_empty(),
                "a step that shows nothing: {}",
                step.line
            );
        }
        assert_eq!(steps.last().unwrap().command, "make smoke-local");
    }

    #[test]
    fn a_step_shows_the_quoted_fragments_after_its_arrow_only() {
        let readme = "x\n<!-- walkthrough -->\n```sh\nmake me   # reads `ID` -> `200 OK`, `\"a\": 1`\n\nmake x # -> `y`\n```\nmore `z`";
        let steps = parse(readme);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].command, "make me");
        assert_eq!(steps[0].shows, ["200 OK", "\"a\": 1"]);
        assert_eq!(steps[1].shows, ["y"]);
    }
}
