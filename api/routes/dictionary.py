"""The county dictionary: words segmentation keeps whole; admins change it, coordinators read it."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import BackendsDep, ClientIP, CurrentUser
from api.errors import error_responses
from api.schemas import DictionaryAddedOut, DictionaryIn, DictionaryOut
from services import dictionary

router = APIRouter(prefix="/api/v1", tags=["dictionary"])


@router.get("/dictionary", response_model=DictionaryOut)
def list_words(user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> DictionaryOut:
    """The admins' words with who added them and when, and the names that count as words."""
    return DictionaryOut.of(dictionary.list_words(backends, principal=user, ip=ip))


@router.post(
    "/dictionary",
    response_model=DictionaryAddedOut,
    status_code=201,
    responses={
        200: {
            "model": DictionaryAddedOut,
            "description": "词都已在词库中 / Every word was already there",
        },
        # 409: another admin changed the dictionary at the same moment; try again.
        **error_responses(409),
    },
)
def add_words(
    body: DictionaryIn, response: Response, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> DictionaryAddedOut:
    """Add words (all or none); documents mentioning a new word are reindexed in the background."""
    added = dictionary.add_words(backends, principal=user, words=body.words, ip=ip)
    if not added.added:
        response.status_code = 200
    return DictionaryAddedOut(
        added=added.added,
        already_present=added.already_present,
        reindex_queued=added.reindex_queued,
    )


@router.delete("/dictionary/{word}", status_code=204, responses=error_responses(404))
def remove_word(word: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> Response:
    """Remove a word; documents mentioning it are reindexed in the background."""
    dictionary.remove_word(backends, principal=user, word=word, ip=ip)
    return Response(status_code=204)
