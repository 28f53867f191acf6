"""`apsgen push OUT_DIR --repo-id ORG/NAME [--private] [--revision R] [--tag T] [--dry-run DIR]`."""

from __future__ import annotations


def register(sub) -> None:
    from apsgen.io.export import DEFAULT_THRESHOLD

    p = sub.add_parser("push", help="push a job's output (data, exports, generated card) to a Hub dataset repo")
    p.add_argument("output_dir", metavar="OUT_DIR", help="the job's output folder or URI")
    p.add_argument("--repo-id", help="dataset repo ORG/NAME (default: the job's hub.repo_id)")
    vis = p.add_mutually_exclusive_group()
    vis.add_argument("--private", dest="private", action="store_true", default=None,
                     help="create the repo private (default: the job's hub.private)")
    vis.add_argument("--public", dest="private", action="store_false", help="create the repo public")
    p.add_argument("--revision", help="branch to commit to (created if missing; default main)")
    p.add_argument("--tag", help="tag the pushed commit, e.g. build-20260101")
    p.add_argument("--format", dest="formats", default="all", metavar="F[,F...]",
                   help="export configs to include (default all; 'none' for steps and problems only)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="relabel the exports from MC at this threshold (default: the stored verdicts)")
    p.add_argument("--no-correct-paths", dest="correct_paths", action="store_false",
                   help="leave the correct sampled solutions out of the path configs (in by default)")
    p.add_argument("--dry-run", metavar="DIR", help="build the exact folder that would be uploaded in DIR; upload nothing")
    p.set_defaults(func=run)


def _formats(text: str) -> list[str]:
    from apsgen.io.export import FORMATS

    from apsgen.io.export import ALIASES

    names = [ALIASES.get(f.strip(), f.strip()) for f in text.split(",") if f.strip()]
    if names == ["none"]:
        return []
    return list(FORMATS) if names == ["all"] else names


def _repo_id(args) -> str | None:
    if args.repo_id:
        return args.repo_id
    from apsgen.io.store import OutputStore

    manifest = OutputStore(args.output_dir).read_manifest()
    return ((manifest.spec if manifest else {}).get("hub") or {}).get("repo_id")


def run(args) -> int:
    from apsgen.cli.errors import UserError
    from apsgen.hub.folder import HubFolderError, build_hub_folder
    from apsgen.hub.push import HubError, check_repo_id, push
    from apsgen.io.export import ExportError

    repo_id = _repo_id(args)
    try:
        if args.dry_run:
            if repo_id:
                check_repo_id(repo_id)
            folder = build_hub_folder(args.output_dir, args.dry_run, formats=_formats(args.formats),
                                      threshold=args.threshold, repo_id=repo_id, correct_paths=args.correct_paths)
            print(f"dry run: {len(folder.files)} files in {folder.path} (configs {', '.join(folder.configs)}); "
                  f"nothing uploaded")
            for f in folder.files:
                print(f"  {f}")
            return 0
        if not repo_id:
            raise UserError("no --repo-id given and the job spec has no hub.repo_id; pass --repo-id ORG/NAME")
        result = push(args.output_dir, repo_id, private=args.private, revision=args.revision, tag=args.tag,
                      formats=_formats(args.formats), threshold=args.threshold, correct_paths=args.correct_paths)
    except (HubError, HubFolderError, ExportError) as e:
        raise UserError(str(e)) from None
    print(result.render())
    return 0
