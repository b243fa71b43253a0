from story_liker.cli import main

main()
