//! Op jobs: what `#[job]` registers ([`OpJobDef`]), and the [`JobBuilder`] its body becomes.
//!
//! A job body is ordinary Rust that the macro rewrites call by call: each call of an op adds a
//! node to the builder and returns a typed [`Handle`] to its output, which later calls take.
//! The handle's type is what makes the compiler check the wiring (see [`Wire`]).

use std::marker::PhantomData;

use super::dynamic::{Collectable, Dynamic, DynamicOutput, collect_value};
use super::mapped::mapped_def;
use super::{Op, OpDef};
use crate::asset::{InputAdapter, SourceLocation, Value};

/// A typed reference to one op call's output inside a job body: `T` is what it carries, `P`
/// the op that produces it. Copy it into as many calls as read it (the op runs once).
pub struct Handle<T, P> {
    node: usize,
    _types: PhantomData<fn() -> (T, P)>,
}

impl<T, P> Handle<T, P> {
    /// The handle of node `node`.
    #[doc(hidden)]
    pub fn at(node: usize) -> Self {
        Handle {
            node,
            _types: PhantomData,
        }
    }

    /// The node it refers to.
    #[doc(hidden)]
    pub fn node(&self) -> usize {
        self.node
    }
}

impl<T, P> Clone for Handle<T, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, P> Copy for Handle<T, P> {}

impl<T, P> std::fmt::Debug for Handle<T, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle(#{})", self.node)
    }
}

/// Implemented by `#[op]` for the tuple of handles op `O` takes, in parameter order; each
/// handle's type is checked against the parameter's by a trait of the op's own, whose message
/// names the op, the parameter and the producer.
#[diagnostic::on_unimplemented(
    message = "these are not the inputs of op `{O}`",
    label = "not the inputs op `{O}` takes",
    note = "pass one handle per input parameter of the op, in order (the context, `#[config]` and `#[resource]` parameters are not passed)"
)]
pub trait Wire<O> {
    /// The nodes of the handles, in order.
    fn nodes(&self) -> Vec<usize>;
}

/// Implemented by `#[op]` for each of its inputs `I` and any handle type whose `T` fits the
/// parameter: the bound a handle of another type fails is the op's own trait, whose message
/// names the op, the parameter and the producer. Checked per argument, so the error is at it.
#[diagnostic::on_unimplemented(
    message = "op `{O}` takes fewer inputs than are passed here",
    label = "one input too many for op `{O}`"
)]
pub trait InputAt<O, const I: usize> {}

/// Checks the handle passed as input `I` of op `O` (spanned on the argument).
#[doc(hidden)]
pub fn check_input<O, const I: usize, H: InputAt<O, I>>(_: &H) {}

/// One node of a job: a call of an op.
#[derive(Debug)]
#[non_exhaustive]
pub struct JobNode {
    /// Its name in the job: the op's, `<op>_2` for a second call, or `.named("..")`.
    pub name: &'static str,
    /// The op it calls.
    pub op: &'static OpDef,
    /// The nodes whose outputs it takes, in parameter order.
    pub inputs: Vec<usize>,
    /// The nodes it runs after without taking their output (`.after(handle)`).
    pub after: Vec<usize>,
    /// Per input: how its value is adapted first, adapter after adapter (`.collect()` of a
    /// `Dynamic`, a part of a tuple); empty if it is not.
    pub adapters: Vec<Vec<InputAdapter>>,
}

/// Implemented by what a job body may call: each `#[op]` (one step) and each `#[graph]` (its
/// steps, named `<graph>.<step>`). Adds the call to the builder and returns the node of its
/// output.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an op or a graph",
    label = "this calls `{Self}`, which is not an `#[op]` or `#[graph]` function",
    note = "a job body calls `#[op]` and `#[graph]` functions; compute other values inside an op"
)]
pub trait Callable: 'static {
    /// What the call produces.
    type Output: 'static;
    /// Adds the call named `name` with input nodes `inputs`, ordered after `after`; returns
    /// the node of its output.
    #[doc(hidden)]
    fn add(b: &mut JobBuilder, name: &'static str, inputs: Vec<usize>, after: &[usize]) -> usize;
}

/// The graph a job body builds. The runtime builds each job once per process.
#[derive(Debug, Default)]
pub struct JobBuilder {
    nodes: Vec<JobNode>,
    /// The `#[graph]` calls being expanded, outermost first: each step's name is prefixed with
    /// theirs, and each step runs after what the graph call runs after; with the index of the
    /// call's first step.
    scopes: Vec<(&'static str, Vec<usize>, usize)>,
    /// The steps of each finished call of a graph without an output: `.after(that call)`
    /// waits for all of them. Its handle's node is [`GROUP_BASE`] + its index here.
    groups: Vec<Vec<usize>>,
    /// Each handle that reads a node's output through an adapter (a `.collect()`, a part of a
    /// tuple): the node, and the adapter. Its handle's node is [`ADAPTED_BASE`] + its index
    /// here.
    adapted: Vec<(usize, Vec<InputAdapter>)>,
}

/// Where the handles of graph calls without an output start (see [`JobBuilder::graph_steps`]).
const GROUP_BASE: usize = usize::MAX / 2;
/// Where the handles read through an adapter start (see [`JobBuilder::adapted`]).
const ADAPTED_BASE: usize = GROUP_BASE + GROUP_BASE / 2;

impl JobBuilder {
    /// An empty job.
    #[doc(hidden)]
    pub fn new() -> Self {
        JobBuilder::default()
    }

    /// Adds a call of `O` (an op or a graph) named `name`, taking `args` and ordered after
    /// `after`.
    #[doc(hidden)]
    pub fn call<O, A>(
        &mut self,
        name: &'static str,
        args: A,
        after: &[usize],
    ) -> Handle<O::Output, O>
    where
        O: Callable,
        A: Wire<O>,
    {
        Handle::at(O::add(self, name, args.nodes(), after))
    }

    /// Adds a call of op `O` on each element of `dynamic` (`files.map(process)`, or
    /// `files.map(|f| process(f, other))`): one step, named `name`, whose input `I` is the
    /// element (the macro passes [`element`]'s handle there) and whose output is the
    /// `Dynamic` of the op's outputs, keyed as the elements are.
    #[doc(hidden)]
    pub fn map<O, A, D, P, const I: usize>(
        &mut self,
        name: &'static str,
        dynamic: &Handle<D, P>,
        args: A,
        after: &[usize],
    ) -> Handle<Dynamic<O::Output>, O>
    where
        O: Op,
        A: Wire<O>,
        D: DynamicOutput<P>,
        O::Output: Send + Sync + 'static,
    {
        let inputs = args.nodes();
        debug_assert_eq!(inputs.get(I), Some(&dynamic.node()));
        let def = mapped_def::<O, D::Element, I>();
        Handle::at(self.push_op(def, name, inputs, after))
    }

    /// The elements of a mapped op's output as one `Vec`, in order (`sizes.collect()`), for
    /// an op that takes them all.
    #[doc(hidden)]
    pub fn collect<D, P>(&mut self, dynamic: &Handle<D, P>) -> Handle<Vec<D::Element>, P>
    where
        D: DynamicOutput<P>,
        D::Element: Collectable,
    {
        Handle::at(self.adapted(dynamic.node(), collect_value::<D::Element>))
    }

    /// The handle node of `node`'s output as `adapter` makes it.
    #[doc(hidden)]
    pub fn adapted(&mut self, node: usize, adapter: InputAdapter) -> usize {
        // A handle that is already adapted (a part of a tuple part, a `.collect()` of one)
        // reads the same node, through its adapters and then this one.
        let (node, mut adapters) = self.input(node);
        adapters.push(adapter);
        self.adapted.push((node, adapters));
        ADAPTED_BASE + self.adapted.len() - 1
    }

    /// An input node: the node it reads, and the adapters its value goes through (a
    /// `.collect()`, a tuple's part).
    fn input(&self, node: usize) -> (usize, Vec<InputAdapter>) {
        match node
            .checked_sub(ADAPTED_BASE)
            .and_then(|c| self.adapted.get(c))
        {
            Some((node, adapters)) => (*node, adapters.clone()),
            None => (node, Vec::new()),
        }
    }

    /// Adds one step calling `op` (what an op's [`Callable::add`] does).
    #[doc(hidden)]
    pub fn push_op(
        &mut self,
        op: &'static OpDef,
        name: &'static str,
        inputs: Vec<usize>,
        after: &[usize],
    ) -> usize {
        let (inputs, adapters): (Vec<usize>, Vec<Vec<InputAdapter>>) =
            inputs.into_iter().map(|n| self.input(n)).unzip();
        let mut after = self.resolve(after);
        let name = match self.scopes.is_empty() {
            true => name,
            false => {
                let mut full = String::new();
                for (scope, scope_after, _) in &self.scopes {
                    full.push_str(scope);
                    full.push('.');
                    after.extend_from_slice(scope_after);
                }
                full.push_str(name);
                // Jobs are built once per process: the name lives as long as the job.
                Box::leak(full.into_boxed_str())
            }
        };
        after.sort_unstable();
        after.dedup();
        after.retain(|a| !inputs.contains(a));
        self.nodes.push(JobNode {
            name,
            op,
            inputs,
            after,
            adapters,
        });
        self.nodes.len() - 1
    }

    /// Starts expanding the graph call `name` (ordered after `after`).
    #[doc(hidden)]
    pub fn enter(&mut self, name: &'static str, after: &[usize]) {
        let after = self.resolve(after);
        self.scopes.push((name, after, self.nodes.len()));
    }

    /// `after` with each graph call without an output replaced by its steps.
    fn resolve(&self, after: &[usize]) -> Vec<usize> {
        let mut resolved = Vec::with_capacity(after.len());
        for &node in after {
            let node = self.input(node).0;
            match node
                .checked_sub(GROUP_BASE)
                .and_then(|g| self.groups.get(g))
            {
                Some(steps) => resolved.extend_from_slice(steps),
                None => resolved.push(node),
            }
        }
        resolved
    }

    /// Ends the innermost graph call.
    #[doc(hidden)]
    pub fn leave(&mut self) {
        self.scopes.pop();
    }

    /// The "output" of the graph call being expanded, for a graph without one: every step it
    /// added, so `.after(graph_call)` waits for all of them (not only the last).
    #[doc(hidden)]
    pub fn graph_steps(&mut self) -> usize {
        let first = self.scopes.last().map_or(0, |s| s.2);
        self.groups.push((first..self.nodes.len()).collect());
        GROUP_BASE + self.groups.len() - 1
    }

    /// The nodes, in the order the body calls them (every node's inputs come before it).
    pub fn nodes(&self) -> &[JobNode] {
        &self.nodes
    }

    /// The nodes, taken.
    pub fn into_nodes(self) -> Vec<JobNode> {
        self.nodes
    }
}

/// The handle of each element of `dynamic`, passed as the mapped op's input in a job body's
/// `.map` (it refers to the `Dynamic` itself; the step runs the op per element).
#[doc(hidden)]
pub fn element<D: DynamicOutput<P>, P>(dynamic: &Handle<D, P>) -> Handle<D::Element, P> {
    Handle::at(dynamic.node())
}

/// Implemented for tuples of 2 to 6 `Clone` parts: `let (rows, errors) = split_rows();` in a
/// job body gives one handle per part. Each consumer of a part receives a copy of it (cheap
/// for frames and `Arc`s, which are reference-counted).
#[diagnostic::on_unimplemented(
    message = "`let (..) = ..` splits a tuple output into one handle per part, but `{P}` produces `{Self}`",
    label = "not a tuple of 2 to 6 `Clone` parts",
    note = "return a tuple whose parts are `Clone` (wrap a large part in `Arc`), or bind the output to one name"
)]
pub trait TupleOutput<P> {
    /// One handle per part.
    type Handles;
    /// Makes the handles of the parts of `node`'s output.
    #[doc(hidden)]
    fn split(b: &mut JobBuilder, node: usize) -> Self::Handles;
}

/// The handles of the parts of a tuple output (`let (a, b) = split_op();`).
#[doc(hidden)]
pub fn split_output<T: TupleOutput<P>, P>(b: &mut JobBuilder, tuple: &Handle<T, P>) -> T::Handles {
    T::split(b, tuple.node())
}

/// Part `I` of a tuple.
#[doc(hidden)]
pub trait Part<const I: usize> {
    /// Its type.
    type Part: Clone + Send + Sync + 'static;
    /// The part.
    fn part(&self) -> &Self::Part;
}

/// What a consumer of part `I` of a tuple output receives: a copy of the part (a value of
/// another type passes through, for the consumer to report).
fn project<T: Part<I> + 'static, const I: usize>(value: &Value) -> Value {
    match value.downcast_ref::<T>() {
        Some(tuple) => std::sync::Arc::new(tuple.part().clone()),
        None => std::sync::Arc::clone(value),
    }
}

macro_rules! part {
    ($i:tt, $P:ident, [$($T:ident),+]) => {
        impl<$($T: Clone + Send + Sync + 'static),+> Part<$i> for ($($T,)+) {
            type Part = $P;
            fn part(&self) -> &$P {
                &self.$i
            }
        }
    };
}

macro_rules! tuple_output {
    ($all:tt, $($i:tt => $P:ident),+) => {
        tuple_output!(@impl $all, $all, $($i => $P),+);
    };
    (@impl [$($T:ident),+], $all:tt, $($i:tt => $P:ident),+) => {
        impl<Pr, $($T: Clone + Send + Sync + 'static),+> TupleOutput<Pr> for ($($T,)+) {
            type Handles = ($(Handle<$P, Pr>,)+);
            fn split(b: &mut JobBuilder, node: usize) -> Self::Handles {
                ($(Handle::at(b.adapted(node, project::<Self, $i>)),)+)
            }
        }
        $(part!($i, $P, $all);)+
    };
}

tuple_output!([A, B], 0 => A, 1 => B);
tuple_output!([A, B, C], 0 => A, 1 => B, 2 => C);
tuple_output!([A, B, C, D], 0 => A, 1 => B, 2 => C, 3 => D);
tuple_output!([A, B, C, D, E], 0 => A, 1 => B, 2 => C, 3 => D, 4 => E);
tuple_output!([A, B, C, D, E, F], 0 => A, 1 => B, 2 => C, 3 => D, 4 => E, 5 => F);

/// Checks a graph's output: its last call's handle carries the type the graph declares.
#[diagnostic::on_unimplemented(
    message = "graph `{G}` returns `{T}`, but its last call produces `{Self}`",
    label = "this produces `{Self}`"
)]
pub trait GraphOutput<G, T> {}
impl<G, T> GraphOutput<G, T> for T {}

/// The node of a graph's output handle, checked against the declared type `T`.
#[doc(hidden)]
pub fn graph_output<G, T, U: GraphOutput<G, T>, P>(handle: &Handle<U, P>) -> usize {
    handle.node()
}

/// Implemented by the marker type `#[job]` emits: `execute_job::<my_pipeline>()` and
/// `schedule!(.., job = my_pipeline)` name the job as an item.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an op job",
    label = "this names `{Self}`, which is not declared with `#[job]`"
)]
pub trait OpJob: 'static {
    /// Its definition.
    const DEF: &'static OpJobDef;
}

/// Everything `#[job]` knows about one job. Not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct OpJobParts {
    /// The job's name (its function's).
    pub name: &'static str,
    /// The doc comment or `description = ".."`.
    pub description: Option<&'static str>,
    /// Where it is declared.
    pub location: SourceLocation,
    /// `tags = { "k" = "v" }`: put on every run of the job.
    pub tags: &'static [(&'static str, &'static str)],
    /// The body, as graph construction.
    pub build: fn(&mut JobBuilder),
}

/// One registered op job.
#[derive(Debug)]
#[non_exhaustive]
pub struct OpJobDef {
    parts: OpJobParts,
}

impl OpJobDef {
    /// What the macro generates.
    #[doc(hidden)]
    pub const fn from_parts(parts: OpJobParts) -> OpJobDef {
        OpJobDef { parts }
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.parts.name
    }

    /// Its description.
    pub fn description(&self) -> Option<&'static str> {
        self.parts.description
    }

    /// Where it is declared.
    pub fn location(&self) -> SourceLocation {
        self.parts.location
    }

    /// The tags its runs carry.
    pub fn tags(&self) -> &'static [(&'static str, &'static str)] {
        self.parts.tags
    }

    /// Runs the body: the job's nodes, in call order.
    pub fn nodes(&self) -> Vec<JobNode> {
        let mut builder = JobBuilder::new();
        (self.parts.build)(&mut builder);
        builder.into_nodes()
    }
}

/// What `#[job]` submits to `inventory`: its definition, which lives in the marker's `OpJob`
/// impl (so `execute_job::<J>()` reaches it without a search).
#[doc(hidden)]
#[derive(Debug)]
pub struct OpJobRegistration(pub &'static OpJobDef);

inventory::collect!(OpJobRegistration);

/// Every op job registered in this binary, in link order.
pub fn registered_op_jobs() -> impl Iterator<Item = &'static OpJobDef> {
    inventory::iter::<OpJobRegistration>
        .into_iter()
        .map(|registration| registration.0)
}
