"""The review page's words in English and Korean.

The lecture this project grew from is Korean (Boostcourse, "AI Basic: Historical Review"); ``--lang ko``
renders the page's labels and each milestone's lecture sentence in its words. English is the default,
and a milestone's English sentence is its own ``showed``. Numbers, names and commands stay as they are.
"""

from __future__ import annotations

LANGUAGES = ("en", "ko")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Deep learning's history, measured",
        "subtitle": "The lecture's historical review, told with this project's own runs",
        "components": "The four key components",
        "components_intro": "Every deep-learning method is four components. Read a new paper through "
                            "them and you see what it changed against what came before, and why it "
                            "mattered.",
        "data": "data", "model": "model", "loss": "loss", "algorithm": "algorithm",
        "data_means": "what the problem gives you",
        "model_means": "what turns inputs into outputs",
        "loss_means": "a proxy for what we actually want",
        "algorithm_means": "how the parameters are updated to reduce the loss",
        "proxy": "The loss is only a proxy",
        "proxy_intro": "A falling loss does not guarantee what we want. The project's own "
                       "measurements show it:",
        "no_proxy": "No run of this review measured a loss beside its goal yet.",
        "summary": "The timeline at a glance",
        "milestones": "milestones",
        "compute": "compute of the runs",
        "review_wall": "this review's wall time",
        "claim": "Claim",
        "paper": "Paper",
        "ours": "Our result",
        "threshold": "threshold",
        "verdict": "Verdict",
        "changed": "changed",
        "baseline": "baseline",
        "figures": "Figures",
        "sample": "Sample",
        "cost": "Cost",
        "wall": "wall time of the runs",
        "flops": "training FLOPs",
        "flops_per_s": "achieved FLOP/s",
        "mfu": "of this machine's measured matmul peak:",
        "provenance": "Provenance",
        "commit": "commit", "torch": "torch", "cpu": "CPU", "threads": "threads",
        "precision": "precision", "preset": "preset", "seeds": "seeds",
        "reproduce": "Reproduce",
        "fix": "Fix",
        "mean": "mean",
        "per_seed": "each dot is one seed; the bar is the mean",
        "holds": "holds", "FAILS": "FAILS", "not judged": "not judged", "skipped": "skipped",
        "pending": "pending",
        "pending_reason": "not run yet: the review is still going, or stopped before it",
        "not_recorded": "not recorded",
        "written": "Written",
        "made_by": "Produced by",
    },
    "ko": {
        "title": "딥러닝의 역사, 직접 재어 보기",
        "subtitle": "강의의 Historical Review를 이 프로젝트가 직접 돌린 결과로 다시 읽습니다",
        "components": "딥러닝의 Key Components",
        "components_intro": "딥러닝 방법론은 네 가지 요소로 이루어집니다. 새로운 논문이나 연구를 이 네 "
                            "가지에 비추어 보면, 기존에 비해 무엇이 바뀌었고 어떤 의의가 있는지 이해하기 "
                            "쉽습니다.",
        "data": "데이터 (data)", "model": "모델 (model)", "loss": "손실 함수 (loss)",
        "algorithm": "알고리즘 (algorithm)",
        "data_means": "우리가 풀고자 하는 문제에 따라 정해집니다",
        "model_means": "같은 데이터라도 모델의 성질에 따라 결과가 달라집니다",
        "loss_means": "우리가 이루고자 하는 것의 근사치(proxy)에 불과합니다",
        "algorithm_means": "loss를 어떻게 줄일지, 가중치를 어떻게 업데이트할지",
        "proxy": "Loss는 근사치(proxy)일 뿐입니다",
        "proxy_intro": "loss 값이 줄어든다고 해서 항상 우리가 원하는 결과를 얻는다고 보장할 수 "
                       "없습니다. 이 프로젝트의 측정이 그것을 보여 줍니다:",
        "no_proxy": "이 리뷰의 실행 중에 아직 loss와 목표를 함께 잰 것이 없습니다.",
        "summary": "한눈에 보는 타임라인",
        "milestones": "개 마일스톤",
        "compute": "실행들의 계산 시간",
        "review_wall": "이번 리뷰의 소요 시간",
        "claim": "주장",
        "paper": "논문",
        "ours": "우리 결과",
        "threshold": "기준",
        "verdict": "판정",
        "changed": "바뀜",
        "baseline": "기준 모델",
        "figures": "그림",
        "sample": "샘플",
        "cost": "비용",
        "wall": "실행들의 소요 시간",
        "flops": "학습 FLOPs",
        "flops_per_s": "달성한 FLOP/s",
        "mfu": "이 기계에서 잰 행렬곱 최대 성능 대비:",
        "provenance": "출처",
        "commit": "커밋", "torch": "torch", "cpu": "CPU", "threads": "스레드",
        "precision": "정밀도", "preset": "프리셋", "seeds": "시드",
        "reproduce": "재현 명령",
        "fix": "해결 방법",
        "mean": "평균",
        "per_seed": "점 하나가 시드 하나이고, 막대가 평균입니다",
        "holds": "성립", "FAILS": "실패", "not judged": "판정 보류", "skipped": "건너뜀",
        "pending": "대기 중",
        "pending_reason": "아직 실행되지 않았습니다: 리뷰가 진행 중이거나 그 전에 멈췄습니다",
        "not_recorded": "기록 없음",
        "written": "작성",
        "made_by": "만든 명령",
    },
}

LENSES: dict[str, dict[str, tuple[str, str]]] = {
    # kind -> (title, sentence); the sentence is filled with the numbers a lens found in the runs.
    "en": {
        "equal_loss": ("Equal loss, unequal goal",
                       "{milestone}: {a} at step {step_a} and {b} at step {step_b} had validation {loss} "
                       "{loss_a} and {loss_b}, nearly equal, yet validation {goal} {goal_a} and {goal_b}."),
        "rising_loss": ("Rising loss, improving accuracy",
                        "{milestone} ({run}, seed {seed}): the validation loss was lowest at step {step} "
                        "({low}) and rose to {end}, while validation accuracy went from {from} to {to} "
                        "(step {top_step})."),
        "game": ("A game's losses",
                 "{milestone} ({run}): the {distance} fell from {first} to {last}, a factor of {factor}, "
                 "while the training losses went {losses}: neither loss tracks the quality of the samples."),
    },
    "ko": {
        "equal_loss": ("loss는 같은데 목표는 다릅니다",
                       "{milestone}: {a}(step {step_a})와 {b}(step {step_b})의 validation {loss}는 "
                       "{loss_a}와 {loss_b}로 거의 같았지만, validation {goal}은 {goal_a}와 "
                       "{goal_b}였습니다."),
        "rising_loss": ("loss는 오르는데 정확도는 좋아집니다",
                        "{milestone} ({run}, seed {seed}): validation loss는 step {step}에서 가장 낮았고 "
                        "({low}) 그 뒤 {end}까지 올랐지만, validation 정확도는 {from}에서 {to}로 "
                        "올랐습니다 (step {top_step})."),
        "game": ("두 네트워크의 loss",
                 "{milestone} ({run}): {distance}는 {first}에서 {last}로 {factor}배 줄었지만, 학습 loss는 "
                 "{losses}로 움직였습니다: 어느 loss도 샘플의 질을 따라가지 않습니다."),
    },
}

LECTURE_KO: dict[str, str] = {
    # The lecture's sentence about each milestone, in its own (Korean) words, lightly shortened.
    "alexnet": "CNN으로 224×224 이미지를 분류해 ILSVRC 2012에서 1등을 차지했습니다. 그 전에는 딥러닝 "
               "없이 SVM 같은 고전적인 머신러닝 방법들을 조합해 썼습니다.",
    "dqn": "알파고로 유명한 딥마인드가 벽돌깨기 게임에 강화학습을 적용한 사례입니다.",
    "seq2seq": "NMT(Neural Machine Translation)를 위한 아키텍처입니다. 다른 언어로 된 문장(단어의 "
               "연속)이 주어지면 원하는 언어의 단어의 연속으로 내놓습니다.",
    "adam": "optimizer는 여러 가지가 있지만 결과가 잘 나오기 때문에 Adam을 그냥 쓰는 경우가 많습니다. "
            "하이퍼파라미터 search에는 computing resource가 드는데, Adam은 웬만하면 잘 됩니다.",
    "gan": "generator는 생성하고 discriminator는 판별하며, 두 네트워크를 적대적으로 학습시켜 실제와 "
           "가까운 데이터를 생성합니다.",
    "resnet": "네트워크를 너무 깊게 쌓으면 학습이 잘 안 된다고 알려져 있었지만, ResNet 이후로는 깊게 "
              "쌓아도 테스트 데이터에서 성능이 좋게 나올 수 있게 되었습니다.",
    "transformer": "그 당시에는 Attention, 곧 Transformer 구조가 모든 것을 대체할 거라고 예상하지 "
                   "못했습니다. 기존 방법에 비해 어떤 장점이 있는지 알아보는 것이 중요합니다.",
    "bert": "풀고자 하는 특정 목적의 데이터는 부족합니다. 그래서 일반적이고 다양한 단어와 문장으로 "
            "pre-training을 한 후, 진짜 풀고자 하는 문제의 소수의 데이터에 fine-tuning을 합니다.",
    "gpt": "fine-tuned NLP model의 끝판왕입니다. 1750억 개의 파라미터로 되어 있어서 아무나 학습시킬 "
           "수 없습니다.",
    "simclr": "학습 데이터 외에 라벨을 모르는 unsupervised data를 사용해 더 좋은 모델을 학습시키겠다는 "
              "방법론입니다.",
}


def labels(lang: str) -> dict[str, str]:
    """The page's words in ``lang`` (one of :data:`LANGUAGES`)."""
    return LABELS[lang]


def lens_text(lens, lang: str) -> tuple[str, str]:
    """(title, sentence) of a :class:`~.proxy.Lens` in ``lang``."""
    title, sentence = LENSES[lang][lens.kind]
    return title, sentence.format(**lens.values)


def lecture(milestone, lang: str) -> str:
    """The lecture's sentence about ``milestone``: its ``showed`` in English, the lecture's own in Korean."""
    if lang == "ko":
        return LECTURE_KO.get(milestone.key, milestone.showed)
    return milestone.showed
