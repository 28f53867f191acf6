"""`apsgen models prepare NAME` / `apsgen models list`: offline demo models."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="prepare the offline demo model")
    msub = p.add_subparsers(dest="models_command", required=True)
    prep = msub.add_parser("prepare", help="convert a known model into the cache (idempotent)")
    prep.add_argument("name", help="e.g. smollm2-135m")
    prep.add_argument("--force", action="store_true", help="convert again even if prepared")
    prep.set_defaults(func=prepare)
    ls = msub.add_parser("list", help="known models and where they are")
    ls.set_defaults(func=list_models)


def prepare(args) -> int:
    from apsgen.models import is_prepared, prepare as do_prepare

    was = is_prepared(args.name) and not args.force
    path = do_prepare(args.name, force=args.force)
    print(f"{args.name}: {'already prepared' if was else 'prepared'} at {path}")
    return 0


def list_models(args) -> int:
    from apsgen.models import KNOWN_MODELS, is_prepared, model_dir

    for name, m in KNOWN_MODELS.items():
        state = f"prepared at {model_dir(name)}" if is_prepared(name) else "not prepared"
        print(f"{name}: {m.hub_id} [{state}]")
    return 0
