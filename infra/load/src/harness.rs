//! A local stack to load, on its own resources: with its own emulator, or with a fault proxy
//! between it and an emulator started here (the oracle reads the emulator directly, never
//! through the proxy).

use devkit::emulator::Emulator;
use devkit::resources::Names;
use devkit::signing::DEV_WEBHOOK_SECRET;
use local_stack::{Stack, StackOptions};

use crate::Target;
use crate::faults::FaultProxy;
use crate::oracle::Tables;

pub struct Harness {
    pub stack: Stack,
    pub target: Target,
    /// The proxy the stack's AWS calls go through, when started with faults.
    pub proxy: Option<FaultProxy>,
    /// The emulator behind the proxy (the stack owns it otherwise).
    emulator: Option<Emulator>,
}

/// How to start it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// Put a [`FaultProxy`] (injecting nothing until told) between the stack and the emulator.
    pub faults: bool,
    /// The events queue's visibility timeout; fault runs shorten it so that a failed message
    /// is retried within seconds rather than the template's 180 s.
    pub visibility_timeout_seconds: Option<u32>,
    /// Seeds the proxy's faults.
    pub seed: u64,
    /// Concurrent pollers of the events queue (default: the template's `SyncMaxConcurrency`).
    pub sync_pollers: Option<usize>,
}

impl Harness {
    pub async fn start(setup: Setup) -> anyhow::Result<Self> {
        let mut names = Names::unique("load");
        if let Some(seconds) = setup.visibility_timeout_seconds {
            names = names.with_visibility_timeout(seconds);
        }
        let (emulator, proxy) = if setup.faults {
            let emulator = tokio::task::spawn_blocking(Emulator::from_env_or_start).await??;
            let proxy = FaultProxy::start(emulator.endpoint(), setup.seed).await?;
            (Some(emulator), Some(proxy))
        } else {
            (None, None)
        };
        let stack = Stack::start(StackOptions {
            port: 0,
            webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
            names,
            sync: true,
            clerk: Default::default(),
            local_clerk: Default::default(),
            metrics_file: None,
            aws_endpoint: proxy.as_ref().map(FaultProxy::endpoint),
            sync_pollers: setup
                .sync_pollers
                .unwrap_or(devkit::poller::DEFAULT_POLLERS),
        })
        .await?;
        let direct = emulator
            .as_ref()
            .map_or_else(|| stack.endpoint().to_owned(), |e| e.endpoint().to_owned());
        let target = Target {
            webhook_url: format!("{}/webhooks/clerk", stack.base_url()),
            secret: DEV_WEBHOOK_SECRET.to_owned(),
            sdk: devkit::emulator::sdk_config_for(&direct).await,
            tables: Tables::from(&stack.resources),
        };
        Ok(Self {
            stack,
            target,
            proxy,
            emulator,
        })
    }

    /// The emulator processes serving this stack, by role, for reading their CPU time.
    pub fn emulator_pids(&self) -> Vec<(&'static str, u32)> {
        match &self.emulator {
            Some(emulator) => emulator.pids(),
            None => self.stack.emulator_pids(),
        }
    }

    pub async fn stop(self) {
        self.stack.stop().await;
    }
}
