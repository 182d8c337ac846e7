//! Sessions against a naive reference model: random sequences of
//! create / get / rotate / destroy / destroy_all / destroy_others and time
//! passing, on the in-process store with a manual clock. After every step
//! each session is live exactly when the model says, and each user's count
//! matches.

use std::time::Duration;

use proptest::prelude::*;
use rampart::session::{SessionConfig, SessionId, SessionMeta, Sessions};
use rampart::{Clock, ManualClock, MemoryStore, Timestamp};

const IDLE: u64 = 3_600;
const CAP: u64 = 3 * 3_600;
const MAX: usize = 3;
const USERS: [&str; 3] = ["ann", "ben", "cat"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Get(usize),
    Rotate(usize),
    Destroy(usize),
    DestroyAll(usize),
    DestroyOthers(usize, usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS.len()).prop_map(Op::Create),
        3 => any::<usize>().prop_map(Op::Get),
        1 => any::<usize>().prop_map(Op::Rotate),
        1 => any::<usize>().prop_map(Op::Destroy),
        1 => (0..USERS.len()).prop_map(Op::DestroyAll),
        1 => (0..USERS.len(), any::<usize>()).prop_map(|(u, i)| Op::DestroyOthers(u, i)),
        3 => (0..2 * IDLE).prop_map(Op::Advance),
    ]
}

/// The model of one session, in seconds.
struct Model {
    id: SessionId,
    user: usize,
    created: u64,
    expires: u64,
    absolute: u64,
    destroyed: bool,
}

impl Model {
    fn live(&self, now: u64) -> bool {
        !self.destroyed && now < self.expires
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn sessions_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
            let store = MemoryStore::builder().clock(clock.shared()).build();
            let config = SessionConfig::default()
                .with_idle_timeout(Duration::from_secs(IDLE))
                .with_max_lifetime(Duration::from_secs(CAP))
                .with_max_sessions_per_user(MAX);
            let sessions = Sessions::new(store, config).unwrap().with_clock(clock.shared());
            let now = || clock.now().as_secs();
            let mut model: Vec<Model> = Vec::new();
            for op in ops {
                match op {
                    Op::Create(u) => {
                        let new = sessions.create(USERS[u], &u, SessionMeta::new()).await.unwrap();
                        let t = now();
                        // The oldest live sessions of the user beyond the maximum end.
                        loop {
                            let live: Vec<usize> = (0..model.len())
                                .filter(|&i| model[i].user == u && model[i].live(t))
                                .collect();
                            if live.len() < MAX {
                                break;
                            }
                            let oldest = *live.iter().min_by_key(|&&i| model[i].created).unwrap();
                            model[oldest].destroyed = true;
                        }
                        model.push(Model {
                            id: new.id,
                            user: u,
                            created: t,
                            expires: t + IDLE,
                            absolute: t + CAP,
                            destroyed: false,
                        });
                    }
                    Op::Get(i) if !model.is_empty() => {
                        let i = i % model.len();
                        let got = sessions.get::<usize>(&model[i].id).await.unwrap();
                        let t = now();
                        prop_assert_eq!(got.is_some(), model[i].live(t));
                        if let Some(s) = got {
                            let m = &mut model[i];
                            m.expires = m.expires.max((t + IDLE).min(m.absolute));
                            prop_assert_eq!(s.data, m.user);
                            prop_assert_eq!(s.expires.as_secs(), m.expires);
                        }
                    }
                    Op::Rotate(i) if !model.is_empty() => {
                        let i = i % model.len();
                        let rotated = sessions.rotate(&model[i].id).await.unwrap();
                        let t = now();
                        prop_assert_eq!(rotated.is_some(), model[i].live(t));
                        if let Some(id) = rotated {
                            let m = &mut model[i];
                            m.expires = m.expires.max((t + IDLE).min(m.absolute));
                            let old = std::mem::replace(&mut m.id, id);
                            // Keep the old id in the model, dead.
                            model.push(Model {
                                id: old,
                                user: model[i].user,
                                created: model[i].created,
                                expires: 0,
                                absolute: 0,
                                destroyed: true,
                            });
                        }
                    }
                    Op::Destroy(i) if !model.is_empty() => {
                        let i = i % model.len();
                        let was = sessions.destroy(&model[i].id).await.unwrap();
                        prop_assert_eq!(was, model[i].live(now()));
                        model[i].destroyed = true;
                    }
                    Op::DestroyAll(u) => {
                        let t = now();
                        let expected = model.iter().filter(|m| m.user == u && m.live(t)).count();
                        prop_assert_eq!(sessions.destroy_all(USERS[u]).await.unwrap(), expected as u64);
                        for m in model.iter_mut().filter(|m| m.user == u) {
                            m.destroyed = true;
                        }
                    }
                    Op::DestroyOthers(u, i) if !model.is_empty() => {
                        let i = i % model.len();
                        let t = now();
                        let keep = model[i].id.clone();
                        let kept = |m: &Model| m.id == keep;
                        let expected = model
                            .iter()
                            .filter(|m| m.user == u && m.live(t) && !kept(m))
                            .count();
                        let ended = sessions.destroy_others(USERS[u], &keep).await.unwrap();
                        prop_assert_eq!(ended, expected as u64);
                        for m in model.iter_mut().filter(|m| m.user == u && m.id != keep) {
                            m.destroyed = true;
                        }
                    }
                    Op::Advance(secs) => clock.advance(Duration::from_secs(secs)),
                    _ => {}
                }
                let t = now();
                for (u, user) in USERS.iter().enumerate() {
                    let expected = model.iter().filter(|m| m.user == u && m.live(t)).count();
                    prop_assert_eq!(sessions.count(user).await.unwrap(), expected, "{}", user);
                }
            }
            Ok(())
        })?;
    }
}
