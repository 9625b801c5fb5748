"""The REST API, served by the Jupyter server extension (:mod:`.app`) and by ``nbdeploy serve`` (:mod:`.standalone`)."""
